/* policy.c - evaluating the access policy (policy.h) against client identities.
 *
 * Every part of a rule (ops, principal, resource) gives a tri-state: MATCH, NO, or UNKNOWN when
 * it needs an identity that is not known. A rule applies when no part is NO; UNKNOWN parts count
 * as a match for deny rules and as no match for allow rules, so missing information can only
 * ever deny. The first rule that applies decides; none: the policy's default. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NO = 0, T_MATCH = 1, T_UNKNOWN = 2 };

/* AND of two tri-states: NO dominates, then UNKNOWN. */
static int t_and(int a, int b)
{
    if (a == T_NO || b == T_NO)
        return T_NO;
    return (a == T_UNKNOWN || b == T_UNKNOWN) ? T_UNKNOWN : T_MATCH;
}

/* Does `id` hold `sid` as its user or as a group usable for this kind of rule? A mandatory
 * label SID ("S-1-16-<rid>", aliases LW/ME/HI/SI) is a threshold, not an exact level: a process
 * can always lower its own integrity (to 0x1001, say), so a deny rule matches a client at that
 * level or BELOW it (an unknown level, 0, included), and an allow rule one at that level or
 * ABOVE it (a known level only). Lowering one's level can then never escape a deny rule, and
 * never earn an allow rule. */
static bool holds(const aipc_identity *id, const char *sid, bool allow)
{
    if (strcmp(id->user_sid, sid) == 0)
        return true;
    if (strncmp(sid, "S-1-16-", 7) == 0 && !strchr(sid + 7, '-')) {
        unsigned long level = strtoul(sid + 7, NULL, 10);
        if (allow)
            return id->integrity != 0 && id->integrity >= level;
        return id->integrity <= level;
    }
    for (size_t i = 0; i < id->ngroups; i++)
        if ((!allow || !id->groups[i].deny_only) && strcmp(id->groups[i].sid, sid) == 0)
            return true;
    return false;
}

/* A principal list against `subject`; `self` is the acting client (for "%u"). */
static int principals_match(const aipc_principals *ps, const aipc_identity *subject,
                            const aipc_identity *self, bool allow)
{
    int unknown = 0;
    for (uint32_t i = 0; i < ps->n; i++) {
        const aipc_principal *p = &ps->v[i];
        if (p->kind == AIPC_PR_ANY)
            return T_MATCH;
        const char *sid = p->kind == AIPC_PR_SELF ? (self ? self->user_sid : NULL) : p->sid;
        if (!subject || !sid) {
            unknown = 1;
            continue;
        }
        if (holds(subject, sid, allow))
            return T_MATCH;
    }
    return unknown ? T_UNKNOWN : T_NO;
}

static bool has_placeholder(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '%' && (s[i + 1] == 'u' || s[i + 1] == 's'))
            return true;
    return false;
}

/* Expands %u and %s of a template into out (cap bytes; templates are bounded so that the
 * result always fits). Without an identity, every '/'-separated level holding a placeholder
 * becomes '+' - a filter at least as wide as any expansion - and the result is T_UNKNOWN
 * (T_MATCH otherwise): a relation that fails even for the widened filter fails for every
 * identity, so the rule cannot apply. */
static int expand(const char *tpl, const aipc_identity *who, char *out, size_t cap, size_t *len)
{
    size_t w = 0;
    int res = T_MATCH;
    out[0] = 0;
    *len = 0;
    for (const char *lv = tpl;;) {
        const char *slash = strchr(lv, '/');
        size_t ln = slash ? (size_t)(slash - lv) : strlen(lv);
        if (!who && has_placeholder(lv, ln)) {
            res = T_UNKNOWN;
            if (w + 1 >= cap)
                return T_UNKNOWN;
            out[w++] = '+';
        } else {
            for (size_t i = 0; i < ln; i++) {
                char num[16];
                const char *ins = NULL;
                if (lv[i] == '%' && i + 1 < ln && (lv[i + 1] == 'u' || lv[i + 1] == 's')) {
                    if (lv[i + 1] == 'u') {
                        ins = who->user_sid;
                    } else {
                        snprintf(num, sizeof num, "%u", (unsigned)who->session);
                        ins = num;
                    }
                    i++;
                }
                size_t l = ins ? strlen(ins) : 1;
                if (w + l >= cap)
                    return T_UNKNOWN;
                memcpy(out + w, ins ? ins : lv + i, l);
                w += l;
            }
        }
        if (!slash)
            break;
        if (w + 1 >= cap)
            return T_UNKNOWN;
        out[w++] = '/';
        lv = slash + 1;
    }
    out[w] = 0;
    *len = w;
    return res;
}

/* Room for a pattern with every placeholder expanded to the longest SID. */
#define EXPANDED_MAX (AIPC_POLICY_PATTERN_MAX + AIPC_POLICY_MAX_PLACEHOLDERS * AIPC_SID_MAX + 1)

/* A name pattern ("*", "prefix*" or exact) against a client name ("" = anonymous). */
static bool name_matches(const char *pat, size_t pl, const char *name)
{
    if (pl && pat[pl - 1] == '*')
        return (pl == 1 || name[0]) && strncmp(name, pat, pl - 1) == 0;
    return strlen(name) == pl && memcmp(name, pat, pl) == 0;
}

/* The decision once the applicable rule (or none) is known. */
static aipc_policy_verdict verdict(const aipc_policy *p, int rule)
{
    aipc_policy_verdict v;
    v.rule = rule;
    v.allow = rule < 0 ? p->default_allow : p->rules[rule].allow;
    return v;
}

/* Whether a rule with tri-state t applies. */
static bool applies(const aipc_rule *r, int t)
{
    return t == T_MATCH || (t == T_UNKNOWN && !r->allow);
}

aipc_policy_verdict aipc_policy_check_topic(const aipc_policy *p, const aipc_identity *who,
                                            unsigned op, const char *topic, size_t n)
{
    char buf[EXPANDED_MAX];
    for (uint32_t i = 0; i < p->nrules; i++) {
        const aipc_rule *r = &p->rules[i];
        if (!(r->ops & op))
            continue;
        int t = principals_match(&r->who, who, who, r->allow);
        if (t == T_NO)
            continue;
        if (r->topic) {                   /* no "topic": every topic, "$" ones included */
            size_t fl = 0;
            int e = expand(r->topic, who, buf, sizeof buf, &fl);
            bool m;
            if (op == AIPC_POLICY_PUB)
                m = aipc_proto_topic_match(buf, fl, topic, n);
            else if (r->allow)
                m = aipc_filter_covers(buf, fl, topic, n);
            else
                m = aipc_filter_overlaps(buf, fl, topic, n);
            t = t_and(t, m ? e : T_NO);
        }
        if (applies(r, t))
            return verdict(p, (int)i);
    }
    return verdict(p, -1);
}

/* A rule's "to" template against the target's name. Without an identity a template with a
 * placeholder can only be matched by names starting with what precedes the placeholder. */
static int to_matches(const char *tpl, const aipc_identity *who, const char *name, char *buf,
                      size_t cap)
{
    size_t tl = strlen(tpl);
    if (!who && has_placeholder(tpl, tl)) {
        size_t pre = 0;
        while (!(tpl[pre] == '%' && (tpl[pre + 1] == 'u' || tpl[pre + 1] == 's')))
            pre++;
        return name[0] && strncmp(name, tpl, pre) == 0 ? T_UNKNOWN : T_NO;
    }
    size_t l = 0;
    if (expand(tpl, who, buf, cap, &l) != T_MATCH)
        return T_UNKNOWN;
    return name_matches(buf, l, name) ? T_MATCH : T_NO;
}

aipc_policy_verdict aipc_policy_check_target(const aipc_policy *p, const aipc_identity *who,
                                             unsigned op, const char *to_name,
                                             const aipc_identity *target)
{
    char buf[EXPANDED_MAX];
    for (uint32_t i = 0; i < p->nrules; i++) {
        const aipc_rule *r = &p->rules[i];
        if (!(r->ops & op))
            continue;
        int t = principals_match(&r->who, who, who, r->allow);
        if (t != T_NO && r->to)
            t = t_and(t, to_matches(r->to, who, to_name, buf, sizeof buf));
        if (t != T_NO && r->to_user.n)
            t = t_and(t, principals_match(&r->to_user, target, who, r->allow));
        if (t != T_NO && r->to_session == AIPC_TS_SAME)
            t = t_and(t, !who || !target ? T_UNKNOWN
                                         : target->session == who->session ? T_MATCH : T_NO);
        if (t != T_NO && r->to_session == AIPC_TS_FIXED)
            t = t_and(t, !target ? T_UNKNOWN : target->session == r->session ? T_MATCH : T_NO);
        if (applies(r, t))
            return verdict(p, (int)i);
    }
    return verdict(p, -1);
}

bool aipc_policy_check_name(const aipc_policy *p, const aipc_identity *who, const char *name)
{
    const aipc_reserved *best = NULL;
    size_t best_len = 0;
    bool best_exact = false;
    for (uint32_t i = 0; i < p->nnames; i++) {
        const aipc_reserved *e = &p->names[i];
        size_t pl = strlen(e->pattern);
        if (!name_matches(e->pattern, pl, name))
            continue;
        bool exact = e->pattern[pl - 1] != '*';
        if (!best || (exact && !best_exact) || (exact == best_exact && pl > best_len)) {
            best = e;
            best_len = pl;
            best_exact = exact;
        }
    }
    return !best || principals_match(&best->owners, who, who, true) == T_MATCH;
}

size_t aipc_policy_rule_count(const aipc_policy *p)
{
    return p ? p->nrules : 0;
}
