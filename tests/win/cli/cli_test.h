/*
 * cli_test.h - what the cli suites (test_cli.c, test_cli_live.c) share: the suite's broker, and
 * aipc.exe started with the suite's engine. As win.cli / win.cli_live every aipc runs on the
 * default engine (apc); as win.cli_iocp / win.cli_live_iocp (AIPC_TEST_BUS_ENGINE=iocp) each
 * gets "--engine iocp" in front of its arguments. Everything runs on the test's thread.
 */
#ifndef CLI_TEST_H
#define CLI_TEST_H

#include "check_main.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_test.h"
#include "cli_proc.h"

#define W AIPC_TEST_WAIT_MS

/* The suite's broker is bus_test.h's bt_suite_broker (started before the first test). */

/* Starts aipc.exe with args (and stdin) and captured output, on the suite's engine. 0 or -1. */
int cli_start(bt_child *ch, const char *args, const char *in);
/* Runs aipc.exe with args (and stdin) to completion; returns the finished child. */
void cli_run(bt_child *ch, const char *args, const char *in);
/* Starts aipc.exe with live pipes, on the suite's engine; the argument string is
 * printf-formatted. */
void cli_start_live(cp_child *ch, const char *fmt, ...);

#endif
