/*
 * broker_suite.h - shared by the broker suites broker_traffic, broker_protocol and
 * broker_lifecycle (test_broker_*.c): asyncipc-broker.exe runs as its own process; clients are
 * raw_client.exe processes and raw connections of the suite (raw_proto.c, no SDK).
 * Synchronisation is by named events, process exits and protocol round trips (ping -> pong);
 * every wait is bounded. Everything here runs on the test's thread.
 */
#ifndef BROKER_SUITE_H
#define BROKER_SUITE_H

#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define W 30000u                /* bound for single protocol waits */
#define NMSG 1000               /* messages per raw_client.exe publisher */

/* Creates a named manual-reset event with a unique name (written to name). */
HANDLE mk_event(char *name, size_t cap, const char *tag);
/* Waits for a helper and asserts its exit code (0). */
void expect_exit(aipc_proc *p, DWORD ms, const char *what);
/* Starts the test's broker (killed by the teardown if the test fails half-way). */
void broker_start(raw_broker *b, const char *tag, const char *extra);
/* Receives the next frame and checks its op (and optional error code). */
void want(raw_conn *c, raw_frame *f, const char *op, const char *code);
/* Adds test t as a test case of its own named name, with the shared fixture (each case can be
 * run alone: <suite>.exe <name>). */
void bs_add(Suite *s, const char *name, const TTest *t);

#endif
