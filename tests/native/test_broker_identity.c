/* test_broker_identity.c - the identity an engine gives a client: checked on entry (SID syntax,
 * group bound, only before hello), stamped into every `from` the broker sends for that client
 * (msg, direct, req, rep) and into presence; clients without identity are stamped without the
 * fields. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"

/* A connection with an identity, said hello. */
static fake *ident_client(aipc_broker *b, uint32_t pid, const aipc_identity *id, const char *name)
{
    fake *f = fake_new(b, pid);
    ck_assert_ptr_nonnull(f->cl);
    if (id)
        ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    fake_hello(f, name);
    return f;
}

/* The from object of a delivery carries exactly this identity. */
static void expect_from(const rx_frame *r, const aipc_identity *id, uint32_t pid)
{
    ck_assert_int_eq((int)rx_from_num(r, "pid"), (int)pid);
    if (!id) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(r->meta, "from");
        ck_assert(!cJSON_GetObjectItemCaseSensitive(from, "sid"));
        ck_assert(!cJSON_GetObjectItemCaseSensitive(from, "session"));
        ck_assert(!cJSON_GetObjectItemCaseSensitive(from, "integrity"));
        return;
    }
    ck_assert_str_eq(rx_from_str(r, "sid"), id->user_sid);
    ck_assert_int_eq((int)rx_from_num(r, "session"), (int)id->session);
    ck_assert_int_eq((int)rx_from_num(r, "integrity"), (int)id->integrity);
}

START_TEST(stamped_everywhere)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *w = ident_client(b, 10, &id_bob, "watcher");
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"$bus/+\"}", NULL);
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"t/#\"}", NULL);
    fake_skip_all(w);
    fake *a = ident_client(b, 11, &id_alice, "alice");
    /* presence payload: {"id","name","pid","sid","session","integrity"} */
    rx_frame *r = fake_expect(w, "msg");
    ck_assert_str_eq(rx_str(r, "topic"), "$bus/joined");
    cJSON *pl = cJSON_Parse((const char *)r->payload);
    ck_assert_ptr_nonnull(pl);
    ck_assert_str_eq(cJSON_GetObjectItem(pl, "sid")->valuestring, SID_ALICE);
    ck_assert_int_eq(cJSON_GetObjectItem(pl, "session")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(pl, "integrity")->valueint, 0x2000);
    ck_assert_int_eq(cJSON_GetObjectItem(pl, "pid")->valueint, 11);
    cJSON_Delete(pl);
    /* msg */
    fake_sendt(a, "{\"op\":\"pub\",\"topic\":\"t/1\"}", "x");
    expect_from(fake_expect(w, "msg"), &id_alice, 11);
    /* direct */
    fake_sendt(a, "{\"op\":\"send\",\"to\":\"watcher\"}", "d");
    expect_from(fake_expect(w, "direct"), &id_alice, 11);
    /* req and rep */
    fake_sendt(a, "{\"op\":\"req\",\"to\":\"watcher\",\"id\":5}", "q");
    r = fake_expect(w, "req");
    expect_from(r, &id_alice, 11);
    uint64_t aid = (uint64_t)rx_from_num(r, "id");
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%u,\"re\":5}", (unsigned)aid);
    fake_sendt(w, meta, "p");
    r = fake_expect(a, "rep");
    expect_from(r, &id_bob, 10);
    /* presence on leave */
    fake_free(a);
    r = fake_expect(w, "msg");
    ck_assert_str_eq(rx_str(r, "topic"), "$bus/left");
    ck_assert(strstr((const char *)r->payload, "\"sid\":\"" SID_ALICE "\"") != NULL);
    fake_free(w);
    aipc_broker_free(b);
}
END_TEST

/* Without an identity (an engine that gives none), from keeps its three fields. */
START_TEST(no_identity_no_fields)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *w = ident_client(b, 20, NULL, "w");
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"t\"}", NULL);
    fake *a = ident_client(b, 21, NULL, NULL);
    ck_assert_ptr_null(aipc_client_identity(a->cl));
    fake_sendt(a, "{\"op\":\"pub\",\"topic\":\"t\"}", "x");
    expect_from(fake_next_nonpresence(w), NULL, 21);
    fake_free(a);
    fake_free(w);
    aipc_broker_free(b);
}
END_TEST

/* set_identity: well-formed SIDs only, bounded groups, before hello only, once. */
START_TEST(identity_checked)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *f = fake_new(b, 1);
    static const char *bad_sids[] = {"", "S-1", "S-1-", "S-1-5-", "S-1-5--2", "s-1-5-18",
                                     "S-2-5-18", "S-1-5-18x", "S-1-5-18\"", "X-1-5"};
    for (size_t i = 0; i < N_OF(bad_sids); i++) {
        aipc_identity id = {bad_sids[i], 1, 0, NULL, 0};
        ck_assert_msg(aipc_client_set_identity(f->cl, &id) == AIPC_EINVAL, "accepted %s",
                      bad_sids[i]);
        aipc_identity_group g = {bad_sids[i], 0};
        aipc_identity id2 = {SID_ALICE, 1, 0, &g, 1};
        ck_assert_int_eq(aipc_client_set_identity(f->cl, &id2), AIPC_EINVAL);
    }
    /* 17 sub-authorities is one too many; a 191-character SID is refused, as is a NULL one */
    aipc_identity longer = {"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16", 1, 0, NULL, 0};
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &longer), AIPC_EINVAL);
    aipc_identity nul = {NULL, 1, 0, NULL, 0};
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &nul), AIPC_EINVAL);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, NULL), AIPC_EINVAL);
    /* the group bound */
    aipc_identity_group *many = calloc(AIPC_IDENTITY_MAX_GROUPS + 1, sizeof *many);
    for (size_t i = 0; i <= AIPC_IDENTITY_MAX_GROUPS; i++)
        many[i].sid = SID_BU;
    aipc_identity big = {SID_ALICE, 1, 0, many, AIPC_IDENTITY_MAX_GROUPS + 1};
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &big), AIPC_EINVAL);
    big.ngroups = AIPC_IDENTITY_MAX_GROUPS;
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &big), 0);
    free(many);                                   /* copied */
    const aipc_identity *got = aipc_client_identity(f->cl);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->user_sid, SID_ALICE);
    ck_assert_uint_eq(got->ngroups, AIPC_IDENTITY_MAX_GROUPS);
    ck_assert_str_eq(got->groups[AIPC_IDENTITY_MAX_GROUPS - 1].sid, SID_BU);
    /* only once */
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &id_bob), AIPC_EINVAL);
    fake_free(f);
    /* not after hello */
    f = fake_new(b, 2);
    fake_hello(f, NULL);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &id_bob), AIPC_EINVAL);
    ck_assert_ptr_null(aipc_client_identity(f->cl));
    fake_free(f);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_identity");
    TCase *tc = tcase_create("identity");
    tcase_add_test(tc, stamped_everywhere);
    tcase_add_test(tc, no_identity_no_fields);
    tcase_add_test(tc, identity_checked);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
