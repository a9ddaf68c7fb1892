/* broker_good.c - see broker_good.h. */
#include "broker_good.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double good_stat(raw_conn *c, const char *key)
{
    static long long id = 1000000;
    char meta[64];
    snprintf(meta, sizeof meta, "{\"op\":\"stats\",\"id\":%lld}", ++id);
    ck_assert_int_eq(raw_send(c, meta, NULL, 0, GOOD_WAIT_MS), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(c, &f, "stats", id, GOOD_WAIT_MS), 1);
    cJSON *st = cJSON_ParseWithLength((const char *)f.payload, f.payload_len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, key);
    ck_assert_msg(cJSON_IsNumber(v), "no %s in %s", key, f.payload);
    double d = v->valuedouble;
    cJSON_Delete(st);
    raw_frame_free(&f);
    return d;
}

void good_start(good_client *g, const raw_broker *b, const char *name)
{
    g->c = raw_connect(b->pipe, GOOD_WAIT_MS);
    ck_assert_ptr_nonnull(g->c);
    ck_assert(raw_hello(g->c, name, GOOD_WAIT_MS) > 0);
    snprintf(g->topic, sizeof g->topic, "good/%s", name);
    ck_assert_int_eq(raw_sub(g->c, g->topic, 1, GOOD_WAIT_MS), 0);
    g->seq = 0;
}

void good_round(good_client *g, unsigned n)
{
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", g->topic);
    for (unsigned i = 0; i < n; i++) {
        char pl[32];
        int len = snprintf(pl, sizeof pl, "%u", g->seq + i);
        ck_assert_int_eq(raw_queue(g->c, meta, pl, (uint32_t)len), 0);
    }
    ck_assert_int_eq(raw_flush(g->c, GOOD_WAIT_MS), 0);
    for (unsigned i = 0; i < n; i++) {
        raw_frame f;
        ck_assert_int_eq(raw_expect(g->c, &f, "msg", -1, GOOD_WAIT_MS), 1);
        ck_assert_str_eq(raw_str(&f, "topic"), g->topic);
        ck_assert_uint_eq(strtoul((const char *)f.payload, NULL, 10), g->seq + i);
        raw_frame_free(&f);
    }
    g->seq += n;
}

void good_stop(good_client *g)
{
    raw_close(g->c);
    g->c = NULL;
}

HANDLE good_event(char *name, size_t cap, const char *tag)
{
    aipc_test_name(name, cap, tag);
    HANDLE h = CreateEventA(NULL, TRUE, FALSE, name);
    ck_assert(h != NULL);
    return h;
}

void good_expect_exit(aipc_proc *p, DWORD ms, DWORD code, const char *what)
{
    ck_assert_msg(aipc_proc_wait(p, ms) == 0, "%s did not exit", what);
    ck_assert_msg(p->exit_code == code, "%s exited with %lu, expected %lu", what,
                  (unsigned long)p->exit_code, (unsigned long)code);
    aipc_proc_close(p);
}
