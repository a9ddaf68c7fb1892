/*
 * bus_shm_common.h - what the bus shared-memory suites share (tests/win/bus_shm): a broker
 * process with extra config, bus clients on a chosen engine and shared-memory setting
 * (recording clients of tests/win/bus/bus_test.h), the SDK's counters, the broker's stats
 * (through aipc_bus_stats), and a warm-up after which payloads at or above the threshold go
 * shared in both directions.
 *
 * Everything here runs on the test thread; waits are bounded and event-based (the recording
 * client's condition variable, a ping round trip), never sleeps.
 */
#ifndef AIPC_BUS_SHM_COMMON_H
#define AIPC_BUS_SHM_COMMON_H

#include "check_main.h"

#include <stdint.h>

#include "bus_test.h"
#include "raw_proto.h"

#define BS_THR 65536u                  /* the default threshold, client and broker */
#define BS_MIB (1024u * 1024u)
#define BS_W aipc_test_wait_ms()

/* The broker process of a suite: raw_broker_start with `extra_json` (more config members,
 * may be NULL) and its pipe's wide name. */
typedef struct bs_broker {
    raw_broker rb;
    wchar_t wpipe[160];
} bs_broker;

void bs_broker_start(bs_broker *b, const char *tag, const char *extra_json);
void bs_broker_stop(bs_broker *b);
/* Checked-fixture teardown of every suite here: kills the broker a failed test left running
 * (tcase_add_checked_fixture(tc, NULL, bs_teardown)). */
void bs_teardown(void);

/* Connects a recording client (keep: keep copies of what arrives; requests are echoed) on
 * `engine` with `shm`
 * (AIPC_SHM_AUTO / AIPC_SHM_OFF) and max_queue_bytes `max_queue` (0 = default), waits until it
 * is connected. `c` may be the first member of a larger struct; on_message may be replaced
 * (NULL: the recorder's). */
typedef void (*bs_on_message)(aipc_bus *bus, void *user, const char *topic,
                              const aipc_bus_peer *from, bool retained, const void *data,
                              size_t len);
void bs_open(bt_client *c, const bs_broker *b, const char *name, PipeImplType engine, uint32_t shm,
             uint64_t max_queue, int keep, bs_on_message on_message);

/* The client's counters (size-versioned struct filled by aipc_bus_get_counters). */
aipc_bus_counters bs_counters(bt_client *c);
/* One number of the broker's stats JSON (aipc_bus_stats through c); fails the test when the
 * member is missing. */
uint64_t bs_stat(bt_client *c, const char *key);
/* A ping through each client (everything each sent before, its releases included, has been
 * processed by the broker, and what the broker queued to it before the pong has been read). */
void bs_sync(bt_client *const *cs, size_t n);

/* Publishes (retain false), retrying after a ping round trip while the queue is full; fails the
 * test on any other error. */
void bs_publish(bt_client *c, const char *topic, const void *data, size_t len);

/* Rounds of `sizes` (each at or above the threshold) sent from every client to every other one
 * (client i subscribes to "<topic>/<i>", every other client publishes there) until one round
 * goes entirely shared: each sender's shm_sent and each receiver's shm_recv move by the round's
 * count. At most 8 rounds, then the test fails. Afterwards every pool has its segments, each
 * confirmed by its receiver, and the broker has processed every release; the subscriptions
 * are removed and what the clients kept is cleared. */
void bs_warm_up(bt_client *const *cs, size_t n, const char *topic, const uint32_t *sizes,
                size_t nsizes);

#endif
