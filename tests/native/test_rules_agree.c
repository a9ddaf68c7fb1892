/* test_rules_agree.c - the SDK and the broker apply the same protocol rules: every row of
 * tests/common/rules_table.h gets its verdict (a) from the SDK's portable checks as the bus
 * client's API paths call them (aipc_bus_connect's name, subscribe/unsubscribe, publish, the
 * dispatch filter set) and (b) from the broker core through fake connections (hello, sub,
 * unsub, pub frames answered with ok/welcome or the broker's error; the config's pipe_name;
 * live and retained delivery through the broker's tries). */
#include "check_main.h"
#include "test_broker_fake.h"

#include "bus_core.h"
#include "proto/names.h"
#include "rules_table.h"

/* ---- (a) the SDK ----------------------------------------------------------------------------- */

/* The SDK's verdict on a rule row: what aipc_bus_connect/subscribe/unsubscribe/publish check
 * before anything is queued (AIPC_EINVAL at once when false). */
static bool sdk_accepts(const rule_case *r, const char *s, char canon[AIPC_PROTO_PIPE_BUF])
{
    switch (r->kind) {
    case R_TOPIC: return aipc__bus_topic_valid(s);
    case R_FILTER: return aipc__bus_filter_valid(s);
    case R_NAME: return aipc__bus_name_valid(s);
    case R_PIPE: return aipc_proto_pipe_name(s, canon) != 0;   /* wname.c converts around it */
    }
    return false;
}

START_TEST(sdk_gives_each_rule_verdict)
{
    const rule_case *r = &rule_cases[_i];
    size_t n;
    char *s = rule_text(r, &n);
    char canon[AIPC_PROTO_PIPE_BUF];
    bool got = sdk_accepts(r, s, canon);
    ck_assert_msg(got == r->ok, "row %d (%s, %zu bytes, \"%.40s\"): the SDK %s it", _i,
                  rule_kind_name(r->kind), n, s, got ? "accepts" : "refuses");
    if (got && r->kind == R_PIPE && r->canon)
        ck_assert_str_eq(canon, r->canon);
    free(s);
}
END_TEST

START_TEST(sdk_dispatch_matches_each_pair)
{
    const match_row *m = &match_rows[_i];
    aipc__bus_subs subs;
    aipc__bus_subs_init(&subs);
    ck_assert_int_eq(aipc__bus_subs_add(&subs, m->filter), 1);
    ck_assert_msg(aipc__bus_subs_match(&subs, m->topic) == (int)m->match,
                  "SDK: filter \"%s\" on topic \"%s\" should %s", m->filter, m->topic,
                  m->match ? "match" : "not match");
    aipc__bus_subs_free(&subs);
}
END_TEST

/* ---- (b) the broker core ------------------------------------------------------------------- */

/* Sends a meta built with cJSON (so any bytes of the case travel as the SDK would send them). */
static void send_op(fake *f, const char *op, const char *key, const char *val, bool id)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "op", op);
    if (!strcmp(op, "hello"))
        cJSON_AddNumberToObject(j, "proto", 1);
    cJSON_AddStringToObject(j, key, val);
    if (id)
        cJSON_AddNumberToObject(j, "id", 1);
    char *meta = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    ck_assert_ptr_nonnull(meta);
    ck_assert_int_eq(fake_sendt(f, meta, !strcmp(op, "pub") ? "x" : NULL), 0);
    free(meta);
}

/* The broker's answer to the op just sent: true for `yes`, false for an error with `code`. */
static bool answer(fake *f, const char *yes, const char *code)
{
    rx_frame *r = fake_next_nonpresence(f);
    ck_assert_msg(r != NULL && r->meta != NULL, "the broker did not answer");
    const char *op = rx_str(r, "op");
    if (!strcmp(op, yes))
        return true;
    ck_assert_msg(!strcmp(op, "error") && !strcmp(rx_str(r, "code"), code),
                  "expected %s or error %s, got %s %s", yes, code, op, rx_str(r, "code"));
    return false;
}

/* The broker's verdict on a rule row. */
static bool broker_accepts(const rule_case *r, const char *s, char *short_name)
{
    if (r->kind == R_PIPE) {
        aipc_broker_config cfg;
        char err[512];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "pipe_name", s);
        char *json = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        bool ok = aipc_broker_config_load_json(&cfg, json, err, sizeof err) == 0;
        free(json);
        if (ok) {
            strcpy(short_name, cfg.pipe_name);
            aipc_broker_config_free(&cfg);
        } else
            ck_assert_msg(strstr(err, "\"pipe_name\"") != NULL, "config error: %s", err);
        return ok;
    }
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 10);
    bool ok;
    if (r->kind == R_NAME) {
        send_op(c, "hello", "name", s, false);
        ok = answer(c, "welcome", "bad_name");
    } else {
        fake_hello(c, NULL);
        if (r->kind == R_TOPIC) {
            send_op(c, "pub", "topic", s, true);
            ok = answer(c, "ok", "bad_topic");
        } else {
            send_op(c, "sub", "topic", s, true);
            ok = answer(c, "ok", "bad_topic");
            send_op(c, "unsub", "topic", s, true);
            ck_assert_msg(answer(c, "ok", "bad_topic") == ok, "sub and unsub disagree");
        }
    }
    fake_free(c);
    aipc_broker_free(b);
    return ok;
}

START_TEST(broker_gives_each_rule_verdict)
{
    const rule_case *r = &rule_cases[_i];
    size_t n;
    char *s = rule_text(r, &n);
    char short_name[AIPC_PROTO_PIPE_BUF];
    bool got = broker_accepts(r, s, short_name);
    ck_assert_msg(got == r->ok, "row %d (%s, %zu bytes, \"%.40s\"): the broker %s it", _i,
                  rule_kind_name(r->kind), n, s, got ? "accepts" : "refuses");
    if (got && r->kind == R_PIPE && r->canon)
        ck_assert_str_eq(short_name, r->canon + AIPC_PROTO_PIPE_PREFIX_LEN);
    free(s);
}
END_TEST

/* How many msg frames on `topic` f received (pumps first). */
static int msgs_on(fake *f, const char *topic)
{
    int k = 0;
    for (rx_frame *r; (r = fake_next(f));)
        if (!strcmp(rx_str(r, "op"), "msg") && !strcmp(rx_str(r, "topic"), topic))
            k++;
    return k;
}

/* A subscriber of m->filter; the topic is then published by a client, or (for "$bus/...") by
 * the broker itself when another client joins or leaves. */
START_TEST(broker_delivers_each_pair)
{
    const match_row *m = &match_rows[_i];
    aipc_broker *b = test_broker(0, 0, 0);
    fake *s = fake_new(b, 10), *other = fake_new(b, 11);
    bool left = !strcmp(m->topic, "$bus/left");
    fake_hello(s, "s");
    if (left)
        fake_hello(other, "other");
    send_op(s, "sub", "topic", m->filter, true);
    ck_assert(answer(s, "ok", "bad_topic"));
    fake_skip_all(s);
    if (m->topic[0] != '$') {
        fake_hello(other, "other");
        send_op(other, "pub", "topic", m->topic, true);
        ck_assert(answer(other, "ok", "bad_topic"));
    } else if (left) {
        fake_free(other);
        other = NULL;
    } else {
        ck_assert_str_eq(m->topic, "$bus/joined");
        fake_hello(other, "other");
    }
    ck_assert_msg(msgs_on(s, m->topic) == (m->match ? 1 : 0),
                  "broker: filter \"%s\" on topic \"%s\" should %s", m->filter, m->topic,
                  m->match ? "match" : "not match");
    if (other)
        fake_free(other);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* The same pairs through the retained store: retained first, then the subscription. */
START_TEST(broker_retained_delivers_each_pair)
{
    const match_row *m = &match_rows[_i];
    if (m->topic[0] == '$')
        return;                           /* clients cannot retain on '$' topics */
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 10), *s = fake_new(b, 11);
    fake_hello(p, "p");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "op", "pub");
    cJSON_AddStringToObject(j, "topic", m->topic);
    cJSON_AddTrueToObject(j, "retain");
    cJSON_AddNumberToObject(j, "id", 1);
    char *meta = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    ck_assert_int_eq(fake_sendt(p, meta, "kept"), 0);
    free(meta);
    ck_assert(answer(p, "ok", "bad_topic"));
    fake_hello(s, "s");
    send_op(s, "sub", "topic", m->filter, true);
    ck_assert_msg(msgs_on(s, m->topic) == (m->match ? 1 : 0),
                  "broker (retained): filter \"%s\" on topic \"%s\" should %s", m->filter,
                  m->topic, m->match ? "match" : "not match");
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rules_agree");
    TCase *tc = tcase_create("sdk");
    tcase_add_loop_test(tc, sdk_gives_each_rule_verdict, 0, N_RULE_CASES);
    tcase_add_loop_test(tc, sdk_dispatch_matches_each_pair, 0, N_MATCH_ROWS);
    suite_add_tcase(s, tc);
    tc = tcase_create("broker");
    tcase_add_loop_test(tc, broker_gives_each_rule_verdict, 0, N_RULE_CASES);
    tcase_add_loop_test(tc, broker_delivers_each_pair, 0, N_MATCH_ROWS);
    tcase_add_loop_test(tc, broker_retained_delivers_each_pair, 0, N_MATCH_ROWS);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
