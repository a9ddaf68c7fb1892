/* test_broker_policy.c - the policy engine alone, in tables: filter relations (matches, covers,
 * overlaps), parse errors naming their key, and decisions for synthetic identities (users,
 * groups, deny-only groups, sessions, unknown identities) over every op, with %u/%s
 * substitution, first-match order, defaults and reserved names. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"

#include "policy.h"

#define PUB_OP AIPC_POLICY_PUB

/* ---- filter relations ---------------------------------------------------------------------- */

static const struct {
    const char *outer, *inner;
    bool covers, overlaps;
} rel[] = {
    {"#", "a/b", true, true},
    {"#", "$bus/x", false, false},
    {"#", "+/x", true, true},
    {"#", "#", true, true},
    {"a/#", "a", true, true},
    {"a/#", "a/#", true, true},
    {"a/+", "a/#", false, true},
    {"a/+", "a/b", true, true},
    {"a/b", "a/+", false, true},
    {"a/b/#", "a/#", false, true},
    {"a/b/#", "a", false, false},
    {"+", "$bus", false, false},
    {"+/#", "$bus/x", false, false},
    {"$bus/#", "$bus/+", true, true},
    {"$bus/+", "$bus/#", false, true},
    {"+/+", "a", false, false},
    {"a", "b", false, false},
    {"+/b", "a/+", false, true},
    {"session/1/#", "session/2/#", false, false},
    {"session/1/#", "session/+/x", false, true},
    {"a/+/b", "a//b", true, true},
    {"a//b", "a/+/b", false, true},
    {"a/b", "a/b/c", false, false},
    {"a/b/c", "a/b", false, false},
};

START_TEST(filter_relations)
{
    for (size_t i = 0; i < N_OF(rel); i++) {
        const char *o = rel[i].outer, *in = rel[i].inner;
        ck_assert_msg(aipc_filter_covers(o, strlen(o), in, strlen(in)) == rel[i].covers,
                      "covers(%s, %s) != %d", o, in, rel[i].covers);
        ck_assert_msg(aipc_filter_overlaps(o, strlen(o), in, strlen(in)) == rel[i].overlaps,
                      "overlaps(%s, %s) != %d", o, in, rel[i].overlaps);
        ck_assert_msg(aipc_filter_overlaps(in, strlen(in), o, strlen(o)) == rel[i].overlaps,
                      "overlaps is not symmetric for (%s, %s)", o, in);
    }
}
END_TEST

static const struct {
    const char *filter, *topic;
    bool match;
} mat[] = {
    {"a/#", "a", true},      {"a/#", "a/b/c", true}, {"a/+", "a", false},
    {"a/+", "a/", true},     {"+", "$x", false},     {"$x/+", "$x/y", true},
    {"#", "$x", false},      {"#", "x", true},       {"a/+/c", "a//c", true},
    {"a", "a/b", false},     {"a/b", "a", false},    {"+/+", "a/b", true},
    {"user/S-1-5-18/#", "user/S-1-5-18/x", true},    {"user/S-1-5-18/#", "user/S-1-5-180", false},
};

START_TEST(filter_matches)
{
    for (size_t i = 0; i < N_OF(mat); i++)
        ck_assert_msg(aipc_proto_topic_match(mat[i].filter, strlen(mat[i].filter), mat[i].topic,
                                          strlen(mat[i].topic)) == mat[i].match,
                      "matches(%s, %s) != %d", mat[i].filter, mat[i].topic, mat[i].match);
}
END_TEST

/* ---- parsing ------------------------------------------------------------------------------ */

static const struct {
    const char *json, *needle;
} bad[] = {
    {"[]", "\"policy\" must be an object"},
    {"{\"rule\":[]}", "\"policy.rule\""},
    {"{\"default\":\"maybe\"}", "\"policy.default\""},
    {"{\"rules\":{}}", "\"policy.rules\""},
    {"{\"rules\":[1]}", "\"policy.rules[0]\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"deny\":[\"sub\"]}]}", "\"policy.rules[0]\""},
    {"{\"rules\":[{\"who\":\"*\"}]}", "exactly one of"},
    {"{\"rules\":[{\"allow\":[]}]}", "\"policy.rules[0].allow\""},
    {"{\"rules\":[{\"allow\":[\"publish\"]}]}", "\"policy.rules[0].allow\""},
    {"{\"rules\":[{\"deny\":\"pub\"}]}", "\"policy.rules[0].deny\""},
    {"{\"rules\":[{\"allow\":[\"pub\"]},{\"allow\":[\"pub\"],\"topic\":\"a/#/b\"}]}",
     "\"policy.rules[1].topic\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"topic\":\"\"}]}", "\"policy.rules[0].topic\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"topic\":7}]}", "\"policy.rules[0].topic\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"topic\":\"a\"}]}", "\"policy.rules[0].topic\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"to\":\"x\"}]}", "\"policy.rules[0].to\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to\":\"a b\"}]}", "\"policy.rules[0].to\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to\":\"a*b\"}]}", "\"policy.rules[0].to\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"to_user\":\"SY\"}]}", "\"policy.rules[0].to_user\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":\"S-1-5-\"}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":\"XX\"}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":\"S-2-5-18\"}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":\"%u\"}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":[]}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":[1]}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"who\":{}}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to_session\":\"same\"}]}",
     "\"policy.rules[0].to_session\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to_session\":-1}]}", "\"policy.rules[0].to_session\""},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to_session\":1.5}]}", "\"policy.rules[0].to_session\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"colour\":1}]}", "\"policy.rules[0].colour\""},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"topic\":\"a\",\"topic\":\"b\"}]}", "appears twice"},
    {"{\"rules\":[],\"rules\":[]}", "appears twice"},
    {"{\"names\":[]}", "\"policy.names\""},
    {"{\"names\":{\"a b\":\"SY\"}}", "\"policy.names.a b\""},
    {"{\"names\":{\"svc\":\"%u\"}}", "\"policy.names.svc\""},
    {"{\"names\":{\"svc\":[]}}", "\"policy.names.svc\""},
    {"{\"names\":{\"svc\":\"SY\",\"svc\":\"BA\"}}", "appears twice"},
    {"{\"rules\":[{\"allow\":[\"pub\"],\"topic\":\"%u%u%u%u%u%u%u%u%s\"}]}",
     "\"policy.rules[0].topic\""},
    /* SIDs no token holds as a group: refused, naming the key */
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":\"RC\"}]}", "\"policy.rules[0].who\" \"RC\""},
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":[\"BG\",\"AC\"]}]}",
     "\"policy.rules[0].who\" \"AC\""},
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":\"S-1-5-012\"}]}", "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":\"S-1-15-2-1\"}]}", "never match"},
    {"{\"rules\":[{\"allow\":[\"send\"],\"to_user\":\"RC\"}]}",
     "\"policy.rules[0].to_user\""},
    {"{\"names\":{\"svc\":\"AC\"}}", "\"policy.names.svc\""},
    /* numbers out of range: no token holds such a SID */
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":\"S-1-5-32-4294967296\"}]}",
     "\"policy.rules[0].who\""},
    {"{\"rules\":[{\"deny\":[\"*\"],\"who\":\"S-1-281474976710656-1\"}]}",
     "\"policy.rules[0].who\""},
};

START_TEST(parse_errors)
{
    for (size_t i = 0; i < N_OF(bad); i++) {
        aipc_policy *p = (aipc_policy *)1;
        char err[300] = "";
        int rc = aipc_policy_parse(bad[i].json, strlen(bad[i].json), &p, err, sizeof err);
        ck_assert_msg(rc == AIPC_EINVAL, "accepted: %s", bad[i].json);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err, bad[i].needle) != NULL, "error for %s was \"%s\", lacks %s",
                      bad[i].json, err, bad[i].needle);
    }
}
END_TEST

/* Bounds: 17 principals, a 1025-byte pattern, 1025 rules. */
START_TEST(parse_bounds)
{
    char *json = malloc(64 * 1024);
    char err[300];
    aipc_policy *p;
    strcpy(json, "{\"rules\":[{\"allow\":[\"pub\"],\"who\":[");
    for (int i = 0; i < 17; i++)
        strcat(json, i ? ",\"SY\"" : "\"SY\"");
    strcat(json, "]}]}");
    ck_assert_int_eq(aipc_policy_parse(json, strlen(json), &p, err, sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "rules[0].who"), "%s", err);
    strcpy(json, "{\"rules\":[{\"allow\":[\"pub\"],\"topic\":\"");
    size_t at = strlen(json);
    memset(json + at, 'a', 1025);
    strcpy(json + at + 1025, "\"}]}");
    ck_assert_int_eq(aipc_policy_parse(json, strlen(json), &p, err, sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "rules[0].topic"), "%s", err);
    json[at + 1024] = '"';                         /* 1024 bytes: accepted */
    strcpy(json + at + 1025, "}]}");
    ck_assert_int_eq(aipc_policy_parse(json, strlen(json), &p, err, sizeof err), 0);
    aipc_policy_free(p);
    strcpy(json, "{\"rules\":[");
    for (int i = 0; i < 1025; i++)
        strcat(json, i ? ",{\"deny\":[\"*\"]}" : "{\"deny\":[\"*\"]}");
    strcat(json, "]}");
    ck_assert_int_eq(aipc_policy_parse(json, strlen(json), &p, err, sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "\"policy.rules\""), "%s", err);
    free(json);
}
END_TEST

/* The config loader takes "policy", names the key on errors, and leaves *out alone then. */
START_TEST(config_key)
{
    aipc_broker_config c;
    aipc_broker_config_defaults(&c);
    char err[300];
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"policy\":{\"rules\":[{\"allow\":"
                                                  "[\"pub\"],\"who\":\"nobody\"}]}}", err,
                                                  sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "config: \"policy.rules[0].who\""), "%s", err);
    ck_assert_ptr_null(c.policy);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"policy\":1}", err, sizeof err),
                     AIPC_EINVAL);
    ck_assert_msg(strstr(err, "\"policy\""), "%s", err);
    /* a later key failing frees the policy already parsed (ASan checks the leak) */
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"policy\":{},\"max_clients\":0}", err,
                                                  sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "max_clients"), "%s", err);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"policy\":{},\"policy\":{}}", err,
                                                  sizeof err), AIPC_EINVAL);
    ck_assert_msg(strstr(err, "duplicate key \"policy\""), "%s", err);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"policy\":{\"rules\":[{\"deny\":"
                                                  "[\"pub\"],\"who\":\"s-1-5-18\"}]}}", err,
                                                  sizeof err), 0);
    ck_assert_ptr_nonnull(c.policy);
    ck_assert_uint_eq(aipc_policy_rule_count(c.policy), 1);
    /* a lower-case "s-" is normalised: the rule denies SYSTEM */
    ck_assert(!aipc_policy_check_topic(c.policy, &id_system, AIPC_POLICY_PUB, "x", 1).allow);
    aipc_policy *copy = aipc_policy_clone(c.policy);
    ck_assert_ptr_nonnull(copy);
    ck_assert(!aipc_policy_check_topic(copy, &id_system, AIPC_POLICY_PUB, "x", 1).allow);
    ck_assert(!aipc_policy_check_topic(copy, &id_alice, AIPC_POLICY_PUB, "x", 1).allow);
    aipc_policy_free(copy);
    aipc_broker_config_free(&c);
    ck_assert_ptr_null(c.policy);
    aipc_broker_config_free(&c);                  /* idempotent */
}
END_TEST

/* SIDs are canonicalised at load: leading zeros go, so the text compares equal to what the
 * engine captures (ConvertSidToStringSid's form). */
START_TEST(sid_canonical)
{
    static const struct {
        const char *who;
        const aipc_identity *denied, *allowed;
    } rows[] = {
        {"S-1-5-32-0544", &id_admin, &id_alice},
        {"S-1-5-32-000544", &id_admin_ua, &id_bob},        /* deny: deny-only groups count */
        {"S-1-05-018", &id_system, &id_admin},
        {"s-1-5-21-100-200-0300-01001", &id_alice, &id_bob},
        {"S-1-16-04096", &id_guest, &id_alice},
        {"S-1-5-32-544", &id_admin, &id_alice},
        {"S-1-0-0", NULL, &id_alice},                      /* a lone 0 stays */
        {"S-1-5-21-100-200-300-4294967295", NULL, &id_alice},
    };
    for (size_t i = 0; i < N_OF(rows); i++) {
        char json[256], err[300];
        snprintf(json, sizeof json, "{\"default\":\"allow\",\"rules\":[{\"deny\":[\"pub\"],"
                 "\"who\":\"%s\"}]}", rows[i].who);
        aipc_policy *p;
        ck_assert_msg(aipc_policy_parse(json, strlen(json), &p, err, sizeof err) == 0, "%s: %s",
                      rows[i].who, err);
        if (rows[i].denied)
            ck_assert_msg(!aipc_policy_check_topic(p, rows[i].denied, PUB_OP, "x", 1).allow,
                          "%s does not deny %s", rows[i].who, rows[i].denied->user_sid);
        ck_assert_msg(aipc_policy_check_topic(p, rows[i].allowed, PUB_OP, "x", 1).allow,
                      "%s denies %s", rows[i].who, rows[i].allowed->user_sid);
        /* a clone (re-parsed from the source) canonicalises the same way */
        aipc_policy *c = aipc_policy_clone(p);
        ck_assert_ptr_nonnull(c);
        if (rows[i].denied)
            ck_assert(!aipc_policy_check_topic(c, rows[i].denied, PUB_OP, "x", 1).allow);
        aipc_policy_free(c);
        aipc_policy_free(p);
    }
    /* names and to_user too */
    const char *js = "{\"default\":\"allow\",\"rules\":[{\"deny\":[\"send\"],"
                     "\"to_user\":\"S-1-5-0018\"}],\"names\":{\"ui\":\"S-1-5-21-100-200-300-001001\"}}";
    aipc_policy *p;
    char err[300];
    ck_assert_msg(aipc_policy_parse(js, strlen(js), &p, err, sizeof err) == 0, "%s", err);
    ck_assert(aipc_policy_check_name(p, &id_alice, "ui"));
    ck_assert(!aipc_policy_check_name(p, &id_bob, "ui"));
    ck_assert(!aipc_policy_check_target(p, &id_alice, AIPC_POLICY_SEND, "svc", &id_system).allow);
    ck_assert(aipc_policy_check_target(p, &id_alice, AIPC_POLICY_SEND, "x", &id_bob).allow);
    aipc_policy_free(p);
}
END_TEST

/* ---- decisions ---------------------------------------------------------------------------- */

/* A: the example policy of docs/protocol.md (per-user areas within a session - a session id
 * alone isolates nothing: session 0 holds services, SSH and scheduled-task logons, and ids are
 * reused - a per-user area, a shared area). */
static const char pol_a[] =
    "{\"rules\":["
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"session/%s/%u/#\"},"       /* 0 */
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"user/%u/#\"},"             /* 1 */
    "{\"allow\":[\"pub\",\"sub\"],\"topic\":\"shared/#\"},"              /* 2 */
    "{\"allow\":[\"sub\"],\"topic\":\"$bus/#\"},"                        /* 3 */
    "{\"allow\":[\"send\",\"req\"],\"to_session\":\"%s\",\"to_user\":\"%u\"},"  /* 4 */
    "{\"allow\":[\"send\",\"req\"],\"to_user\":\"SY\"},"                /* 5 */
    "{\"allow\":[\"*\"],\"who\":[\"SY\",\"BA\"]}],"                     /* 6 */
    "\"names\":{\"svc.*\":[\"SY\",\"BA\"]}}";

/* B: deny rules first, default allow. */
static const char pol_b[] =
    "{\"default\":\"allow\",\"rules\":["
    "{\"deny\":[\"*\"],\"who\":\"BG\"},"                                   /* 0 */
    "{\"deny\":[\"pub\"],\"who\":\"BA\",\"topic\":\"logs/#\"},"            /* 1 */
    "{\"deny\":[\"sub\"],\"topic\":\"secret/#\"},"                         /* 2 */
    "{\"allow\":[\"send\",\"req\"],\"to\":\"vault.%u\"},"                 /* 3 */
    "{\"deny\":[\"send\",\"req\"],\"to\":\"vault*\"},"                    /* 4 */
    "{\"deny\":[\"send\",\"req\"],\"to_session\":0},"                     /* 5 */
    "{\"deny\":[\"pub\"],\"topic\":\"inbox/%u/#\"},"                       /* 6 */
    "{\"allow\":[\"req\"],\"to_user\":\"%u\",\"who\":\"S-1-5-21-100-200-300-3000\"}," /* 7 */
    "{\"deny\":[\"req\"]}]}";                                              /* 8 */

/* C: placeholders only. */
static const char pol_c[] =
    "{\"default\":\"allow\",\"rules\":["
    "{\"allow\":[\"send\"],\"to\":\"vault.%u\"},"                 /* 0 */
    "{\"deny\":[\"send\"],\"to\":\"vault*\"},"                    /* 1 */
    "{\"deny\":[\"pub\"],\"topic\":\"inbox/%u/#\"},"              /* 2 */
    "{\"deny\":[\"pub\"],\"who\":\"LW\",\"topic\":\"sys/#\"}]}";      /* 3 */

/* D: integrity labels are thresholds - deny rules match at or below the level, allow rules at
 * or above it. */
static const char pol_d[] =
    "{\"default\":\"allow\",\"rules\":["
    "{\"deny\":[\"pub\"],\"who\":\"ME\",\"topic\":\"admin/#\"},"     /* 0 */
    "{\"deny\":[\"pub\"],\"who\":\"LW\",\"topic\":\"sys/#\"},"       /* 1 */
    "{\"allow\":[\"sub\"],\"who\":\"HI\",\"topic\":\"logs/#\"},"     /* 2 */
    "{\"deny\":[\"sub\"],\"topic\":\"logs/#\"}]}";                    /* 3 */

/* Users logged on in session 0 (SSH, a scheduled task). */
static const aipc_identity id_alice_s0 = {SID_ALICE, 0, 0x2000, g_alice, N_OF(g_alice)};
static const aipc_identity id_bob_s0 = {SID_BOB, 0, 0x2000, g_bob, N_OF(g_bob)};

/* Integrity levels between and below the named ones (a process may lower its own). */
static const aipc_identity id_alice_lowplus = {SID_ALICE, 1, 0x1001, g_alice, N_OF(g_alice)};
static const aipc_identity id_alice_untrusted = {SID_ALICE, 1, 0x0, g_alice, N_OF(g_alice)};
static const aipc_identity id_alice_medplus = {SID_ALICE, 1, 0x2100, g_alice, N_OF(g_alice)};
static const aipc_identity id_alice_0fff = {SID_ALICE, 1, 0x0fff, g_alice, N_OF(g_alice)};
static const aipc_identity id_admin_highplus = {SID_ADMIN, 1, 0x3100, g_admin_elev,
                                                N_OF(g_admin_elev)};

#define PUB AIPC_POLICY_PUB
#define SUB AIPC_POLICY_SUB
#define SEND AIPC_POLICY_SEND
#define REQ AIPC_POLICY_REQ

static const struct {
    const char *pol;
    const aipc_identity *who;
    unsigned op;
    const char *res;              /* topic/filter, or the target's name */
    const aipc_identity *target;  /* send/req */
    bool allow;
    int rule;
} dec[] = {
    /* A: per-user areas in a session, %s and %u */
    {pol_a, &id_alice, PUB, "session/1/" SID_ALICE "/x", NULL, true, 0},
    {pol_a, &id_alice, PUB, "session/1/" SID_BOB "/x", NULL, false, -1},
    {pol_a, &id_alice, PUB, "session/2/" SID_ALICE "/x", NULL, false, -1},
    {pol_a, &id_alice_s2, PUB, "session/2/" SID_ALICE "/x", NULL, true, 0},
    {pol_a, &id_bob, PUB, "session/2/" SID_BOB "/x", NULL, true, 0},
    {pol_a, &id_bob, PUB, "session/2/" SID_ALICE "/x", NULL, false, -1},
    {pol_a, &id_alice, SUB, "session/1/" SID_ALICE "/#", NULL, true, 0},
    {pol_a, &id_alice, SUB, "session/1/" SID_ALICE, NULL, true, 0},
    {pol_a, &id_alice, SUB, "session/1/#", NULL, false, -1},
    {pol_a, &id_alice, SUB, "session/1/+/x", NULL, false, -1},
    {pol_a, &id_alice, SUB, "session/+/x", NULL, false, -1},
    {pol_a, &id_alice, SUB, "session/#", NULL, false, -1},
    /* A: session 0 (services, SSH, scheduled tasks) is no shared area for users */
    {pol_a, &id_alice_s0, PUB, "session/0/" SID_ALICE "/x", NULL, true, 0},
    {pol_a, &id_bob_s0, SUB, "session/0/" SID_ALICE "/#", NULL, false, -1},
    {pol_a, &id_bob_s0, SUB, "session/0/#", NULL, false, -1},
    /* A: users, %u */
    {pol_a, &id_alice, PUB, "user/" SID_ALICE "/notes", NULL, true, 1},
    {pol_a, &id_alice, SUB, "user/" SID_ALICE "/+", NULL, true, 1},
    {pol_a, &id_alice, PUB, "user/" SID_BOB "/notes", NULL, false, -1},
    {pol_a, &id_alice, SUB, "user/+/notes", NULL, false, -1},
    {pol_a, &id_bob, SUB, "user/" SID_BOB "/#", NULL, true, 1},
    /* A: shared area, presence, everything else */
    {pol_a, &id_alice, PUB, "shared/chat", NULL, true, 2},
    {pol_a, &id_bob, SUB, "shared/+", NULL, true, 2},
    {pol_a, &id_alice, SUB, "#", NULL, false, -1},
    {pol_a, &id_alice, SUB, "$bus/+", NULL, true, 3},
    {pol_a, &id_alice, PUB, "$bus/x", NULL, false, -1},
    {pol_a, &id_alice, PUB, "other", NULL, false, -1},
    /* A: administrators (enabled group) and SYSTEM may do anything; a deny-only group grants
     * nothing */
    {pol_a, &id_admin, PUB, "session/9/x", NULL, true, 6},
    {pol_a, &id_admin_ua, PUB, "session/9/x", NULL, false, -1},
    {pol_a, &id_admin_ua, PUB, "session/1/" SID_ADMIN "/x", NULL, true, 0},
    {pol_a, &id_system, SUB, "#", NULL, true, 6},
    {pol_a, &id_system, SUB, "$SYS/x", NULL, true, 6},
    /* A: unknown identity - rules without placeholders still apply, %s/%u ones do not */
    {pol_a, NULL, PUB, "shared/x", NULL, true, 2},
    {pol_a, NULL, PUB, "session/1/x", NULL, false, -1},
    {pol_a, NULL, SUB, "user/+/x", NULL, false, -1},
    /* A: send/req to one's own user in one's own session, to SYSTEM services; never to another
     * user in the same session (session 0 included), nor across sessions */
    {pol_a, &id_alice, SEND, "ui", &id_alice, true, 4},
    {pol_a, &id_alice, SEND, "ui", &id_admin, false, -1},
    {pol_a, &id_alice, SEND, "ui", &id_alice_s2, false, -1},
    {pol_a, &id_alice, REQ, "ui", &id_bob, false, -1},
    {pol_a, &id_alice, SEND, "ui", &id_bob, false, -1},
    {pol_a, &id_bob, SEND, "ui", &id_alice_s2, false, -1},
    {pol_a, &id_alice_s0, SEND, "x", &id_bob_s0, false, -1},
    {pol_a, &id_alice_s0, REQ, "x", &id_alice_s0, true, 4},
    {pol_a, &id_bob_s0, REQ, "svc.print", &id_system, true, 5},
    {pol_a, &id_alice, REQ, "svc.print", &id_system, true, 5},
    {pol_a, &id_alice, SEND, "x", NULL, false, -1},
    {pol_a, NULL, SEND, "x", &id_alice, false, -1},
    {pol_a, &id_system, SEND, "x", &id_bob, true, 6},
    /* B: a group denied everything */
    {pol_b, &id_guest, PUB, "a", NULL, false, 0},
    {pol_b, &id_guest, SUB, "a", NULL, false, 0},
    {pol_b, &id_guest, SEND, "x", &id_alice, false, 0},
    {pol_b, &id_guest, SUB, "$bus/+", NULL, false, 0},   /* no "topic": "$" topics too */
    /* B: deny rules count deny-only groups */
    {pol_b, &id_admin, PUB, "logs/x", NULL, false, 1},
    {pol_b, &id_admin_ua, PUB, "logs/x", NULL, false, 1},
    {pol_b, &id_alice, PUB, "logs/x", NULL, true, -1},
    /* B: a sub is denied when it could reach a denied topic */
    {pol_b, &id_alice, SUB, "#", NULL, false, 2},
    {pol_b, &id_alice, SUB, "secret", NULL, false, 2},
    {pol_b, &id_alice, SUB, "+/x", NULL, false, 2},
    {pol_b, &id_alice, SUB, "public/#", NULL, true, -1},
    {pol_b, &id_alice, SUB, "$bus/#", NULL, true, -1},
    {pol_b, &id_alice, PUB, "secret/x", NULL, true, -1},
    /* B: first match - vault.<own SID> allowed before vault* is denied */
    {pol_b, &id_alice, SEND, "vault." SID_ALICE, &id_bob, true, 3},
    {pol_b, &id_alice, SEND, "vault." SID_BOB, &id_bob, false, 4},
    {pol_b, &id_alice, REQ, "vault", &id_bob, false, 4},
    {pol_b, &id_alice, SEND, "vaulted", &id_bob, false, 4},
    {pol_b, &id_alice, SEND, "", &id_bob, true, -1},
    /* B: session 0 is off limits; an unknown target counts as in it for a deny rule */
    {pol_b, &id_alice, SEND, "svc", &id_system, false, 5},
    {pol_b, &id_alice, SEND, "svc", NULL, false, 5},
    {pol_b, &id_alice, SEND, "svc", &id_bob, true, -1},
    /* B: %u in a deny rule; unknown identity makes the deny apply */
    {pol_b, &id_alice, PUB, "inbox/" SID_ALICE "/x", NULL, false, 6},
    {pol_b, &id_bob, PUB, "inbox/" SID_ALICE "/x", NULL, true, -1},
    /* B: an unknown identity may hold the denied group: deny rules on a SID apply */
    {pol_b, NULL, PUB, "other", NULL, false, 0},
    {pol_b, NULL, SEND, "x", &id_bob, false, 0},
    /* C: %u with an unknown identity - allow rules skip, deny rules apply */
    {pol_c, NULL, PUB, "inbox/anyone/x", NULL, false, 2},
    {pol_c, NULL, PUB, "other", NULL, true, -1},
    {pol_c, NULL, SEND, "vault." SID_ALICE, &id_bob, false, 1},
    {pol_c, &id_alice, SEND, "vault." SID_ALICE, &id_bob, true, 0},
    {pol_c, &id_alice, SEND, "vault.x", &id_bob, false, 1},
    /* C: a deny rule on an integrity label matches that level and below */
    {pol_c, &id_guest, PUB, "sys/x", NULL, false, 3},
    {pol_c, &id_alice_0fff, PUB, "sys/x", NULL, false, 3},
    {pol_c, &id_alice_untrusted, PUB, "sys/x", NULL, false, 3},
    {pol_c, &id_alice, PUB, "sys/x", NULL, true, -1},
    {pol_c, &id_system, PUB, "sys/x", NULL, true, -1},
    {pol_c, NULL, PUB, "sys/x", NULL, false, 3},
    /* D: lowering one's level (medium to 0x1001) does not escape a deny on ME ... */
    {pol_d, &id_alice, PUB, "admin/x", NULL, false, 0},
    {pol_d, &id_alice_lowplus, PUB, "admin/x", NULL, false, 0},
    {pol_d, &id_guest, PUB, "admin/x", NULL, false, 0},
    {pol_d, &id_alice_untrusted, PUB, "admin/x", NULL, false, 0},
    {pol_d, &id_alice_medplus, PUB, "admin/x", NULL, true, -1},
    {pol_d, &id_admin, PUB, "admin/x", NULL, true, -1},
    {pol_d, &id_system, PUB, "admin/x", NULL, true, -1},
    /* ... 0x1001 is above LW (not denied by it), 0x1000 is not */
    {pol_d, &id_alice_lowplus, PUB, "sys/x", NULL, true, -1},
    {pol_d, &id_guest, PUB, "sys/x", NULL, false, 1},
    /* ... and an allow on HI needs high or more */
    {pol_d, &id_admin, SUB, "logs/#", NULL, true, 2},
    {pol_d, &id_admin_highplus, SUB, "logs/#", NULL, true, 2},
    {pol_d, &id_system, SUB, "logs/#", NULL, true, 2},
    {pol_d, &id_alice, SUB, "logs/#", NULL, false, 3},
    {pol_d, &id_admin_ua, SUB, "logs/#", NULL, false, 3},
    {pol_d, &id_alice_untrusted, SUB, "logs/#", NULL, false, 3},
    {pol_d, NULL, SUB, "logs/#", NULL, false, 3},
    /* B: requests only within one's own account, for members of a group */
    {pol_b, &id_alice, REQ, "helper", &id_alice_s2, true, 7},
    {pol_b, &id_alice, REQ, "helper", &id_bob, false, 8},
    {pol_b, &id_bob, REQ, "helper", &id_bob, false, 8},
    {pol_b, &id_bob, SEND, "helper", &id_bob, true, -1},
};

/* Runs the rows written for policy text `text` against p; returns the ops they covered. */
static unsigned check_rows(const aipc_policy *p, const char *text, const char *what)
{
    unsigned seen = 0;
    for (size_t i = 0; i < N_OF(dec); i++) {
        if (dec[i].pol != text)
            continue;
        aipc_policy_verdict v;
        if (dec[i].op == PUB || dec[i].op == SUB)
            v = aipc_policy_check_topic(p, dec[i].who, dec[i].op, dec[i].res,
                                        strlen(dec[i].res));
        else
            v = aipc_policy_check_target(p, dec[i].who, dec[i].op, dec[i].res, dec[i].target);
        ck_assert_msg(v.allow == dec[i].allow && v.rule == dec[i].rule,
                      "%s row %u (%s op %u on \"%s\"): got allow=%d rule=%d, want %d/%d", what,
                      (unsigned)i, dec[i].who ? dec[i].who->user_sid : "(unknown)", dec[i].op,
                      dec[i].res, v.allow, v.rule, dec[i].allow, dec[i].rule);
        seen |= dec[i].op;
    }
    return seen;
}

/* The policy of docs/policy-example.json, loaded as the broker loads a config. */
static aipc_policy *docs_example(void)
{
    FILE *f = fopen(AIPC_DOCS_DIR "/policy-example.json", "rb");
    ck_assert_msg(f != NULL, "cannot open %s", AIPC_DOCS_DIR "/policy-example.json");
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    aipc_broker_config c;
    char err[300];
    ck_assert_msg(aipc_broker_config_load_json(&c, text, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(c.policy);
    aipc_policy *p = aipc_policy_clone(c.policy);
    aipc_broker_config_free(&c);
    return p;
}

START_TEST(decisions)
{
    const char *texts[4] = {pol_a, pol_b, pol_c, pol_d};
    aipc_policy *pols[4];
    char err[300];
    for (int k = 0; k < 4; k++)
        ck_assert_msg(aipc_policy_parse(texts[k], strlen(texts[k]), &pols[k], err, sizeof err) == 0,
                      "policy %d: %s", k, err);
    unsigned seen = 0;
    for (int k = 0; k < 4; k++)
        seen |= check_rows(pols[k], texts[k], k == 0 ? "A" : k == 1 ? "B" : k == 2 ? "C" : "D");
    ck_assert_uint_eq(seen, PUB | SUB | SEND | REQ);       /* every op is in the table */
    /* the documented example behaves as policy A, row for row */
    aipc_policy *doc = docs_example();
    ck_assert_uint_eq(check_rows(doc, pol_a, "docs example"), PUB | SUB | SEND | REQ);
    ck_assert(!aipc_policy_check_name(doc, &id_alice, "svc.print"));
    ck_assert(aipc_policy_check_name(doc, &id_system, "svc.print"));
    aipc_policy_free(doc);
    for (int k = 0; k < 4; k++)
        aipc_policy_free(pols[k]);
}
END_TEST

/* Reserved names: owners by SID, alias and group; deny-only groups do not own; the most
 * specific pattern decides. */
static const char pol_names[] =
    "{\"default\":\"allow\",\"names\":{\"svc.*\":\"BA\",\"svc.print\":\"SY\","
    "\"ui\":\"" SID_ALICE "\",\"team.*\":\"" SID_TEAM "\",\"lab.*\":[\"" SID_BOB "\",\"SY\"]}}";

static const struct {
    const aipc_identity *who;
    const char *name;
    bool ok;
} names[] = {
    {&id_alice, "ui", true},          {&id_bob, "ui", false},
    {NULL, "ui", false},              {&id_alice_s2, "ui", true},
    {&id_admin, "svc.x", true},       {&id_admin_ua, "svc.x", false},
    {&id_system, "svc.x", true},      {&id_admin, "svc.print", false},
    {&id_system, "svc.print", true},  {&id_admin, "svc.printer", true},
    {&id_alice, "team.a", true},      {&id_bob, "team.a", false},
    {&id_bob, "lab.1", true},         {&id_system, "lab.1", true},
    {&id_alice, "lab.1", false},      {&id_bob, "free", true},
    {NULL, "free", true},             {&id_bob, "svc", true},
    {&id_bob, "uix", true},
};

START_TEST(reserved_names)
{
    aipc_policy *p;
    char err[300];
    ck_assert_msg(aipc_policy_parse(pol_names, strlen(pol_names), &p, err, sizeof err) == 0,
                  "%s", err);
    for (size_t i = 0; i < N_OF(names); i++)
        ck_assert_msg(aipc_policy_check_name(p, names[i].who, names[i].name) == names[i].ok,
                      "row %u: %s taking %s", (unsigned)i,
                      names[i].who ? names[i].who->user_sid : "(unknown)", names[i].name);
    /* the default does not reserve names; a policy without names reserves none */
    aipc_policy *q;
    ck_assert_int_eq(aipc_policy_parse("{}", 2, &q, err, sizeof err), 0);
    ck_assert(aipc_policy_check_name(q, &id_bob, "svc.print"));
    ck_assert(!aipc_policy_check_topic(q, &id_bob, PUB, "a", 1).allow);   /* default deny */
    aipc_policy_free(q);
    aipc_policy_free(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_policy");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, filter_relations);
    tcase_add_test(tc, filter_matches);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, parse_bounds);
    tcase_add_test(tc, config_key);
    tcase_add_test(tc, sid_canonical);
    tcase_add_test(tc, decisions);
    tcase_add_test(tc, reserved_names);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
