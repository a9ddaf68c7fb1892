/*
 * broker_good.h - shared pieces of the limit suites that run against the real broker
 * (test_broker_conn_limits.c, test_broker_fanout.c): the broker's stats counters through a
 * raw connection, and the well-behaved client that must keep getting every message it
 * publishes to itself, in order, while a limit acts. Check assertions inside (suite use only).
 */
#ifndef AIPC_BROKER_GOOD_H
#define AIPC_BROKER_GOOD_H

#include "raw_proto.h"

#define GOOD_WAIT_MS 30000u     /* bound for single protocol waits */

/* One counter of the broker's stats answer, asked through c. */
double good_stat(raw_conn *c, const char *key);

/* The well-behaved client: subscribed to its own topic good/<name>. */
typedef struct good_client {
    raw_conn *c;
    unsigned seq;
    char topic[64];
} good_client;

void good_start(good_client *g, const raw_broker *b, const char *name);
/* Publishes n messages to itself and asserts it gets them all back in order. */
void good_round(good_client *g, unsigned n);
void good_stop(good_client *g);

/* A named manual-reset event for the helper processes (name written to name). */
HANDLE good_event(char *name, size_t cap, const char *tag);
/* Waits for a helper process and asserts its exit code. */
void good_expect_exit(aipc_proc *p, DWORD ms, DWORD code, const char *what);

#endif
