/* bus_shm_common.c - broker, clients, counters, stats and warm-up of the bus shared-memory
 * suites (bus_shm_common.h). */
#include "bus_shm_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static bs_broker *current;     /* the running broker of the test (for bs_teardown) */

void bs_broker_start(bs_broker *b, const char *tag, const char *extra_json)
{
    memset(b, 0, sizeof *b);
    ck_assert_int_eq(raw_broker_start(&b->rb, tag, extra_json), 0);
    aipc_test_wname(b->wpipe, sizeof b->wpipe / sizeof b->wpipe[0], b->rb.pipe);
    current = b;
}

void bs_broker_stop(bs_broker *b)
{
    if (b->rb.process)
        ck_assert_int_eq(raw_broker_stop(&b->rb, 10000), 0);
    b->rb.process = NULL;
    current = NULL;
}

void bs_teardown(void)
{
    bt_reap();   /* first: the clients a failed test left go before their broker */
    if (current && current->rb.process)
        raw_broker_stop(&current->rb, 0);       /* a failed test's broker: killed */
    current = NULL;
}

void bs_open(bt_client *c, const bs_broker *b, const char *name, PipeImplType engine, uint32_t shm,
             uint64_t max_queue, int keep, bs_on_message on_message)
{
    aipc_bus_options o;
    c->keep = keep;
    c->req_mode = BT_REQ_ECHO;      /* bt_connect keeps both: never leave them uninitialised */
    bt_options(c, &o, b->wpipe, name, 0);
    o.engine = engine;
    o.shm = shm;
    o.max_queue_bytes = max_queue;
    if (on_message)
        o.on_message = on_message;
    ck_assert_int_eq(bt_connect(c, &o), 0);
    ck_assert_msg(bt_wait(c, &c->connected, 1, BS_W), "%s did not connect", name ? name : "client");
}

aipc_bus_counters bs_counters(bt_client *c)
{
    aipc_bus_counters k;
    memset(&k, 0, sizeof k);
    k.size = sizeof k;
    ck_assert_int_eq(aipc_bus_get_counters(c->bus, &k), 0);
    return k;
}

uint64_t bs_stat(bt_client *c, const char *key)
{
    bt_reply r;
    bt_reply_init(&r);
    ck_assert_int_gt(aipc_bus_stats(c->bus, BS_W, bt_on_reply, &r), 0);
    ck_assert(bt_reply_wait(&r, BS_W + 5000));
    ck_assert_int_eq(r.status, 0);
    cJSON *j = cJSON_ParseWithLength((const char *)r.data, r.len);
    ck_assert_ptr_nonnull(j);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    ck_assert_msg(cJSON_IsNumber(v), "broker stats have no \"%s\": %s", key, (const char *)r.data);
    uint64_t out = (uint64_t)v->valuedouble;
    cJSON_Delete(j);
    bt_reply_free(&r);
    return out;
}

void bs_sync(bt_client *const *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(bt_sync(cs[i], BS_W), "ping %u did not come back", (unsigned)i);
}

void bs_publish(bt_client *c, const char *topic, const void *data, size_t len)
{
    for (int tries = 0;; tries++) {
        int rc = aipc_bus_publish(c->bus, topic, data, len, false);
        if (rc == 0)
            return;
        ck_assert_msg(rc == AIPC_EQUEUEFULL && tries < 1000, "publish of %u bytes: %s",
                      (unsigned)len, aipc_strerror(rc));
        ck_assert(bt_sync(c, BS_W));    /* the broker read (and released) what we queued */
    }
}

void bs_warm_up(bt_client *const *cs, size_t n, const char *topic, const uint32_t *sizes,
                size_t nsizes)
{
    char t[160];
    uint32_t biggest = 0;
    for (size_t k = 0; k < nsizes; k++)
        biggest = sizes[k] > biggest ? sizes[k] : biggest;
    uint8_t *buf = malloc(biggest);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0x3c, biggest);
    for (size_t i = 0; i < n; i++) {
        snprintf(t, sizeof t, "%s/%u", topic, (unsigned)i);
        ck_assert_int_eq(aipc_bus_subscribe(cs[i]->bus, t), 0);
    }
    bs_sync(cs, n);
    int warm = 0;
    for (int round = 0; round < 8 && !warm; round++) {
        aipc_bus_counters before[16];
        long long got[16];
        ck_assert_uint_le(n, 16);
        for (size_t i = 0; i < n; i++) {
            before[i] = bs_counters(cs[i]);
            got[i] = bt_get(cs[i], &cs[i]->msgs);
        }
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < nsizes && i != j; k++) {
                    snprintf(t, sizeof t, "%s/%u", topic, (unsigned)i);
                    bs_publish(cs[j], t, buf, sizes[k]);
                }
        long long each = (long long)((n - 1) * nsizes);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(bt_wait(cs[i], &cs[i]->msgs, got[i] + each, BS_W),
                          "warm-up round %d: client %u got %lld of %lld", round, (unsigned)i,
                          bt_get(cs[i], &cs[i]->msgs) - got[i], each);
        bs_sync(cs, n);      /* releases written and processed */
        bs_sync(cs, n);
        warm = 1;
        for (size_t i = 0; i < n; i++) {
            aipc_bus_counters now = bs_counters(cs[i]);
            if (now.shm_sent - before[i].shm_sent != (uint64_t)each ||
                now.shm_recv - before[i].shm_recv != (uint64_t)each)
                warm = 0;
        }
    }
    ck_assert_msg(warm, "shared memory not in use both ways after 8 warm-up rounds");
    for (size_t i = 0; i < n; i++) {
        snprintf(t, sizeof t, "%s/%u", topic, (unsigned)i);
        ck_assert_int_eq(aipc_bus_unsubscribe(cs[i]->bus, t), 0);
        bt_clear(cs[i]);
    }
    bs_sync(cs, n);
    free(buf);
}
