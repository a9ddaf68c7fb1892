/* policy_load.c - parsing the "policy" config object (policy.h) strictly: every problem names
 * its key ("policy.rules[2].topic"), unknown keys and duplicate keys are errors, every list and
 * pattern is bounded. A clone re-parses the compact JSON source kept in the policy. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <cjson/cJSON.h>
#ifdef _WIN32
#include <windows.h>
#include <sddl.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SDDL aliases of well-known SIDs a policy may use instead of the SID string. */
static const struct {
    const char *alias, *sid;
} aliases[] = {
    {"WD", "S-1-1-0"},      {"AN", "S-1-5-7"},      {"AU", "S-1-5-11"},
    {"IU", "S-1-5-4"},      {"NU", "S-1-5-2"},      {"SU", "S-1-5-6"},
    {"BA", "S-1-5-32-544"}, {"BU", "S-1-5-32-545"}, {"BG", "S-1-5-32-546"},
    {"PU", "S-1-5-32-547"}, {"RD", "S-1-5-32-555"}, {"SY", "S-1-5-18"},
    {"LS", "S-1-5-19"},     {"NS", "S-1-5-20"},     {"LW", "S-1-16-4096"},
    {"ME", "S-1-16-8192"},  {"HI", "S-1-16-12288"}, {"SI", "S-1-16-16384"},
};

/* SIDs that never appear in a token's TokenGroups, so a rule naming them would silently do
 * nothing: refused at load. RC (RESTRICTED) is only ever a restricting SID, AC (ALL APPLICATION
 * PACKAGES) is matched by an access check against an AppContainer token's package SID, not
 * held as a group. */
static const struct {
    const char *alias, *sid, *why;
} never_held[] = {
    {"RC", "S-1-5-12", "RESTRICTED is only a restricting SID of a restricted token"},
    {"AC", "S-1-15-2-1", "ALL APPLICATION PACKAGES is not a group of an AppContainer token"},
};

/* Canonical text of a valid "S-1-..." string into out (AIPC_SID_MAX + 1): leading zeros of each
 * number removed ("S-1-5-32-0544" is "S-1-5-32-544", as ConvertSidToStringSid prints it, and as
 * the identities the engine captures are written). -1 when a number is out of range (the
 * authority above 2^48 - 1, a sub-authority above 2^32 - 1): no token holds such a SID. On
 * Windows the result is also round-tripped through ConvertStringSidToSid/ConvertSidToStringSid
 * and must come back unchanged. */
static int sid_canonical(const char *s, char *out)
{
    size_t w = 0, n = strlen(s);
    int part = 0;
    memcpy(out, "S-1-", 4);
    w = 4;
    for (size_t i = 4; i < n; part++) {
        size_t start = i;
        while (i < n && s[i] != '-')
            i++;
        size_t j = start;
        while (j + 1 < i && s[j] == '0')
            j++;
        unsigned long long v = 0;
        for (size_t k = j; k < i; k++)
            v = v * 10 + (unsigned)(s[k] - '0');       /* at most 15 digits (aipc_sid_valid) */
        if (v > (part == 0 ? 0xFFFFFFFFFFFFull : 0xFFFFFFFFull))
            return -1;
        if (part)
            out[w++] = '-';
        memcpy(out + w, s + j, i - j);
        w += i - j;
        i++;                                            /* the '-' */
    }
    out[w] = 0;
#ifdef _WIN32
    PSID bin = NULL;
    char *back = NULL;
    int ok = ConvertStringSidToSidA(out, &bin) && ConvertSidToStringSidA(bin, &back) &&
             strcmp(back, out) == 0;
    if (back)
        LocalFree(back);
    if (bin)
        LocalFree(bin);
    if (!ok)
        return -1;
#endif
    return 0;
}

typedef struct pctx {
    char *err;
    size_t errlen;
    char key[96];             /* "policy.rules[3]" */
} pctx;

static int perr(pctx *x, const char *sub, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int perr(pctx *x, const char *sub, const char *fmt, ...)
{
    if (x->err && x->errlen) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(x->err, x->errlen, "config: \"%s%s%s\" %s", x->key, sub ? "." : "",
                 sub ? sub : "", msg);
    }
    return AIPC_EINVAL;
}

/* strdup is not C11. */
static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void principals_free(aipc_principals *ps)
{
    for (uint32_t i = 0; i < ps->n; i++)
        free(ps->v[i].sid);
    free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

void aipc_policy_free(aipc_policy *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nrules; i++) {
        aipc_rule *r = &p->rules[i];
        principals_free(&r->who);
        principals_free(&r->to_user);
        free(r->topic);
        free(r->to);
    }
    for (uint32_t i = 0; i < p->nnames; i++) {
        free(p->names[i].pattern);
        principals_free(&p->names[i].owners);
    }
    free(p->rules);
    free(p->names);
    free(p->source);
    free(p);
}

/* Duplicate keys anywhere in an object are refused (cJSON keeps both). */
static bool has_duplicate(const cJSON *obj, const cJSON **dup)
{
    for (const cJSON *v = obj->child; v; v = v->next)
        for (const cJSON *w = obj->child; w != v; w = w->next)
            if (strcmp(w->string, v->string) == 0) {
                *dup = v;
                return true;
            }
    return false;
}

/* One principal: "*", "%u" (when self_ok), a SID string or an alias. */
static int principal_one(pctx *x, const char *sub, const char *s, bool self_ok,
                         aipc_principal *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(s, "*") == 0) {
        out->kind = AIPC_PR_ANY;
        return 0;
    }
    if (strcmp(s, "%u") == 0) {
        if (!self_ok)
            return perr(x, sub, "cannot be \"%%u\" here");
        out->kind = AIPC_PR_SELF;
        return 0;
    }
    const char *sid = NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(s, aliases[i].alias) == 0)
            sid = aliases[i].sid;
    char norm[AIPC_SID_MAX + 1], canon[AIPC_SID_MAX + 1];
    if (!sid) {
        size_t n = strlen(s);
        for (size_t i = 0; i < sizeof never_held / sizeof never_held[0]; i++)
            if (strcmp(s, never_held[i].alias) == 0)
                return perr(x, sub, "\"%s\" cannot be used: %s, so the rule would never match",
                            s, never_held[i].why);
        if (n > AIPC_SID_MAX)
            return perr(x, sub, "is not a SID (\"S-1-...\"), an alias (BA, AU, SY, ...) or \"*\"");
        memcpy(norm, s, n + 1);
        if (norm[0] == 's')
            norm[0] = 'S';
        if (!aipc_sid_valid(norm) || sid_canonical(norm, canon) != 0)
            return perr(x, sub, "\"%.64s\" is not a SID (\"S-1-...\"), an alias (BA, AU, SY, ...) "
                        "or \"*\"", s);
        for (size_t i = 0; i < sizeof never_held / sizeof never_held[0]; i++)
            if (strcmp(canon, never_held[i].sid) == 0)
                return perr(x, sub, "\"%s\" cannot be used: %s, so the rule would never match",
                            s, never_held[i].why);
        sid = canon;
    }
    out->kind = AIPC_PR_SID;
    out->sid = dup_str(sid);
    return out->sid ? 0 : AIPC_ENOMEM;
}

/* A principal or a non-empty array of them. */
static int principals(pctx *x, const char *sub, const cJSON *v, bool self_ok,
                      aipc_principals *out)
{
    memset(out, 0, sizeof *out);
    const cJSON *one = cJSON_IsString(v) ? v : NULL;
    int n = one ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (!one && !cJSON_IsArray(v))
        return perr(x, sub, "must be a principal (SID, alias or \"*\") or an array of them");
    if (n < 1 || n > (int)AIPC_POLICY_MAX_PRINCIPALS)
        return perr(x, sub, "must list 1 to %u principals", AIPC_POLICY_MAX_PRINCIPALS);
    out->v = calloc((size_t)n, sizeof *out->v);
    if (!out->v)
        return AIPC_ENOMEM;
    const cJSON *it = one ? one : v->child;
    for (int i = 0; i < n; i++, it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring) {
            principals_free(out);
            return perr(x, sub, "must contain strings only");
        }
        int rc = principal_one(x, sub, it->valuestring, self_ok, &out->v[i]);
        if (rc) {
            principals_free(out);
            return rc;
        }
        out->n++;
    }
    return 0;
}

/* Counts %u/%s placeholders; checks the template's length. */
static int template_check(pctx *x, const char *sub, const char *s)
{
    size_t n = strlen(s);
    unsigned ph = 0;
    if (n == 0 || n > AIPC_POLICY_PATTERN_MAX)
        return perr(x, sub, "must be 1 to %u bytes", AIPC_POLICY_PATTERN_MAX);
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '%' && (s[i + 1] == 'u' || s[i + 1] == 's'))
            ph++;
    if (ph > AIPC_POLICY_MAX_PLACEHOLDERS)
        return perr(x, sub, "has more than %u %%u/%%s placeholders", AIPC_POLICY_MAX_PLACEHOLDERS);
    return 0;
}

/* A name pattern: "*", "prefix*" or a name; with placeholders when tpl. */
static int name_pattern_check(pctx *x, const char *sub, const char *s, bool tpl)
{
    int rc = template_check(x, sub, s);
    if (rc)
        return rc;
    size_t n = strlen(s);
    size_t body = s[n - 1] == '*' ? n - 1 : n;
    if (body > AIPC_PROTO_NAME_MAX)
        return perr(x, sub, "is longer than a client name");
    for (size_t i = 0; i < body; i++) {
        if (tpl && s[i] == '%' && (s[i + 1] == 'u' || s[i + 1] == 's')) {
            i++;
            continue;
        }
        if (!aipc_proto_name_valid(s + i, 1))
            return perr(x, sub, "must be a client name, \"prefix*\" or \"*\"");
    }
    return 0;
}

/* The op list of an "allow"/"deny" member. */
static int ops_list(pctx *x, const char *sub, const cJSON *v, unsigned *ops)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"pub", AIPC_POLICY_PUB}, {"sub", AIPC_POLICY_SUB}, {"send", AIPC_POLICY_SEND},
        {"req", AIPC_POLICY_REQ},
        {"*", AIPC_POLICY_PUB | AIPC_POLICY_SUB | AIPC_POLICY_SEND | AIPC_POLICY_REQ},
    };
    *ops = 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return perr(x, sub, "must be a non-empty array of \"pub\", \"sub\", \"send\", \"req\" "
                    "or \"*\"");
    for (const cJSON *it = v->child; it; it = it->next) {
        unsigned bit = 0;
        for (size_t i = 0; cJSON_IsString(it) && i < sizeof names / sizeof names[0]; i++)
            if (strcmp(it->valuestring, names[i].name) == 0)
                bit = names[i].bit;
        if (!bit)
            return perr(x, sub, "must contain only \"pub\", \"sub\", \"send\", \"req\" or \"*\"");
        *ops |= bit;
    }
    return 0;
}

/* A rule's "topic": a filter template for pub/sub rules. */
static int topic_parse(pctx *x, const char *k, const cJSON *v, aipc_rule *r)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return perr(x, k, "must be a string");
    if (!(r->ops & (AIPC_POLICY_PUB | AIPC_POLICY_SUB)))
        return perr(x, k, "needs \"pub\" or \"sub\" in the rule's ops");
    int rc = template_check(x, k, v->valuestring);
    if (rc)
        return rc;
    if (!aipc_proto_filter_valid(v->valuestring, strlen(v->valuestring)))
        return perr(x, k, "is not a valid topic filter");
    r->topic = dup_str(v->valuestring);
    return r->topic ? 0 : AIPC_ENOMEM;
}

/* One rule object. */
static int rule_parse(pctx *x, const cJSON *o, aipc_rule *r)
{
    const cJSON *dup;
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o))
        return perr(x, NULL, "must be an object");
    if (has_duplicate(o, &dup))
        return perr(x, dup->string, "appears twice");
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(o, "allow");
    const cJSON *deny = cJSON_GetObjectItemCaseSensitive(o, "deny");
    if (!allow == !deny)
        return perr(x, NULL, "must have exactly one of \"allow\" and \"deny\"");
    r->allow = allow != NULL;
    int rc = ops_list(x, allow ? "allow" : "deny", allow ? allow : deny, &r->ops);
    bool has_who = false;
    for (const cJSON *v = o->child; v && rc == 0; v = v->next) {
        const char *k = v->string;
        if (strcmp(k, "allow") == 0 || strcmp(k, "deny") == 0)
            continue;
        if (strcmp(k, "who") == 0) {
            rc = principals(x, k, v, false, &r->who);
            has_who = true;
        } else if (strcmp(k, "topic") == 0) {
            rc = topic_parse(x, k, v, r);
        } else if (strcmp(k, "to") == 0) {
            if (!cJSON_IsString(v) || !v->valuestring)
                rc = perr(x, k, "must be a string");
            else if (!(r->ops & (AIPC_POLICY_SEND | AIPC_POLICY_REQ)))
                rc = perr(x, k, "needs \"send\" or \"req\" in the rule's ops");
            else if (!(rc = name_pattern_check(x, k, v->valuestring, true)) &&
                     !(r->to = dup_str(v->valuestring)))
                rc = AIPC_ENOMEM;
        } else if (strcmp(k, "to_user") == 0) {
            rc = (r->ops & (AIPC_POLICY_SEND | AIPC_POLICY_REQ))
                     ? principals(x, k, v, true, &r->to_user)
                     : perr(x, k, "needs \"send\" or \"req\" in the rule's ops");
        } else if (strcmp(k, "to_session") == 0) {
            if (!(r->ops & (AIPC_POLICY_SEND | AIPC_POLICY_REQ))) {
                rc = perr(x, k, "needs \"send\" or \"req\" in the rule's ops");
            } else if (cJSON_IsString(v) && v->valuestring && strcmp(v->valuestring, "%s") == 0) {
                r->to_session = AIPC_TS_SAME;
            } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 4294967295.0 &&
                       (double)(uint32_t)v->valuedouble == v->valuedouble) {
                r->to_session = AIPC_TS_FIXED;
                r->session = (uint32_t)v->valuedouble;
            } else {
                rc = perr(x, k, "must be \"%%s\" (the same session) or a session number");
            }
        } else {
            rc = perr(x, k, "is not a rule key (allow, deny, who, topic, to, to_user, "
                      "to_session)");
        }
    }
    if (rc == 0 && !has_who) {
        r->who.v = calloc(1, sizeof *r->who.v);     /* kind AIPC_PR_ANY */
        if (!r->who.v)
            rc = AIPC_ENOMEM;
        else
            r->who.n = 1;
    }
    return rc;
}

/* "names": {"pattern": principal(s), ...}. */
static int names_parse(pctx *x, const cJSON *o, aipc_policy *p)
{
    const cJSON *dup;
    if (!cJSON_IsObject(o))
        return perr(x, NULL, "must be an object of name pattern: principal(s)");
    if (has_duplicate(o, &dup))
        return perr(x, dup->string, "appears twice");
    int n = cJSON_GetArraySize(o);
    if (n > (int)AIPC_POLICY_MAX_NAMES)
        return perr(x, NULL, "has more than %u entries", AIPC_POLICY_MAX_NAMES);
    p->names = n ? calloc((size_t)n, sizeof *p->names) : NULL;
    if (n && !p->names)
        return AIPC_ENOMEM;
    for (const cJSON *v = o->child; v; v = v->next) {
        aipc_reserved *e = &p->names[p->nnames];
        int rc = name_pattern_check(x, v->string, v->string, false);
        if (rc == 0)
            rc = principals(x, v->string, v, false, &e->owners);
        if (rc == 0 && !(e->pattern = dup_str(v->string))) {
            principals_free(&e->owners);
            rc = AIPC_ENOMEM;
        }
        if (rc)
            return rc;
        p->nnames++;
    }
    return 0;
}

int aipc_policy_from_cjson(const cJSON *obj, aipc_policy **out, char *err, size_t errlen)
{
    pctx x = {err, errlen, "policy"};
    const cJSON *dup;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    if (!cJSON_IsObject(obj))
        return perr(&x, NULL, "must be an object with \"rules\" and/or \"names\"");
    if (has_duplicate(obj, &dup))
        return perr(&x, dup->string, "appears twice");
    aipc_policy *p = calloc(1, sizeof *p);
    if (!p)
        return AIPC_ENOMEM;
    int rc = 0;
    for (const cJSON *v = obj->child; v && rc == 0; v = v->next) {
        const char *k = v->string;
        if (strcmp(k, "default") == 0) {
            if (cJSON_IsString(v) && strcmp(v->valuestring, "allow") == 0)
                p->default_allow = true;
            else if (!cJSON_IsString(v) || strcmp(v->valuestring, "deny") != 0)
                rc = perr(&x, k, "must be \"allow\" or \"deny\"");
        } else if (strcmp(k, "rules") == 0) {
            int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
            if (n < 0 || n > (int)AIPC_POLICY_MAX_RULES) {
                rc = perr(&x, k, "must be an array of at most %u rules", AIPC_POLICY_MAX_RULES);
                break;
            }
            if (n && !(p->rules = calloc((size_t)n, sizeof *p->rules))) {
                rc = AIPC_ENOMEM;
                break;
            }
            int i = 0;
            for (const cJSON *it = v->child; it && rc == 0; it = it->next, i++) {
                snprintf(x.key, sizeof x.key, "policy.rules[%d]", i);
                rc = rule_parse(&x, it, &p->rules[i]);
                p->nrules++;          /* a half-parsed rule is freed with the rest */
            }
            snprintf(x.key, sizeof x.key, "policy");
        } else if (strcmp(k, "names") == 0) {
            snprintf(x.key, sizeof x.key, "policy.names");
            rc = names_parse(&x, v, p);
            snprintf(x.key, sizeof x.key, "policy");
        } else {
            rc = perr(&x, k, "is not a policy key (default, rules, names)");
        }
    }
    if (rc == 0) {
        char *src = cJSON_PrintUnformatted(obj);
        p->source = src ? dup_str(src) : NULL;
        cJSON_free(src);
        if (!p->source)
            rc = AIPC_ENOMEM;
    }
    if (rc) {
        if (rc == AIPC_ENOMEM && err && errlen)
            snprintf(err, errlen, "config: out of memory reading \"policy\"");
        aipc_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int aipc_policy_parse(const char *json, size_t len, aipc_policy **out, char *err, size_t errlen)
{
    *out = NULL;
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j) {
        if (err && errlen)
            snprintf(err, errlen, "config: \"policy\" is not valid JSON");
        return AIPC_EINVAL;
    }
    int rc = aipc_policy_from_cjson(j, out, err, errlen);
    cJSON_Delete(j);
    return rc;
}

aipc_policy *aipc_policy_clone(const aipc_policy *p)
{
    aipc_policy *c = NULL;
    if (p && p->source)
        aipc_policy_parse(p->source, strlen(p->source), &c, NULL, 0);
    return c;
}
