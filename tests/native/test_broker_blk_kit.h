/* test_broker_blk_kit.h - what the recycled-block suites (test_broker_blkcache.c, _blkloan.c,
 * _blkland.c) start from: a broker core on the fake clock whose frame blocks come from a
 * counting allocator (`ca`: every block allocated, reallocated and freed is counted), and a
 * subscriber to one topic. One translation unit per suite: the definitions are static. */
#ifndef TEST_BROKER_BLK_KIT_H
#define TEST_BROKER_BLK_KIT_H

#include "test_broker_fake.h"
#include "test_count_alloc.h"

#include "internal.h"

#include <stdio.h>

static count_alloc ca;

/* A broker with default limits but max_incomplete_bytes (0: the default). */
static aipc_broker *blk_broker(uint64_t max_incomplete)
{
    count_alloc_init(&ca);
    fake_clock_ms = 5000;
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    if (max_incomplete)
        cfg.max_incomplete_bytes = max_incomplete;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, &ca.a), 0);
    return b;
}

/* A client past hello, subscribed to topic. */
static fake *blk_subscriber(aipc_broker *b, const char *topic)
{
    fake *f = fake_new(b, 0);
    fake_hello(f, NULL);
    char m[160];
    snprintf(m, sizeof m, "{\"op\":\"sub\",\"id\":1,\"topic\":\"%s\"}", topic);
    fake_sendt(f, m, NULL);
    fake_expect(f, "ok");
    return f;
}

#endif
