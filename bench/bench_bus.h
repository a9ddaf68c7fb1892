/*
 * bench_bus.h - what the two parts of bench_bus.exe share: bench_bus.c (the broker process,
 * connecting and syncing clients, the 64 B row, main) and bench_bus_large.c (the 1 MiB rows
 * and the "count" profiling mode). All the clients of a run are on one engine, and every
 * callback of theirs runs on that engine's I/O thread.
 */
#ifndef AIPC_BENCH_BUS_H
#define AIPC_BENCH_BUS_H

#include "bench_util.h"

#include "asyncipc/asyncipc.h"

#define REPS     5
#define WAIT_MS  60000u
#define TOPIC    "bench/t"

extern HANDLE g_broker;              /* the broker process (bench_bus.c broker_start) */
extern HANDLE g_progress;            /* manual-reset: a subscriber made progress */
extern HANDLE g_state;               /* auto-reset: a connection state or answer changed */

/* Waits (bounded) until `cond` holds; the callbacks set g_state on every change. */
#define WAIT_FOR(cond, what)                                                                  \
    do {                                                                                     \
        double until_ = bench_now() + WAIT_MS / 1000.0;                                      \
        while (!(cond)) {                                                                    \
            if (bench_now() > until_)                                                        \
                bench_fail("timed out waiting for %s", what);                                \
            WaitForSingleObject(g_state, 100);                                               \
        }                                                                                    \
    } while (0)

/* Connects a client and waits for its welcome. `o` has the callbacks and user already. */
aipc_bus *bench_bus_connect(aipc_bus_options *o, PipeImplType engine);
/* A ping through b: everything b sent before has been processed by the broker. */
void bench_bus_sync(aipc_bus *b);

/* bench_bus_large.c: one 1 MiB scenario on fresh clients (mode 0: shared memory allowed,
 * 1: the zero-copy API, 2: shared memory off = inline) to nsubs subscribers; its RESULT line. */
void bench_bus_large(PipeImplType engine, const char *ename, int nsubs, int mode);
/* The profiling aid "count apc|iocp pub1|pub16 N [window]" (window <= 0: the default). */
void bench_bus_count(PipeImplType engine, int nsubs, uint32_t n, LONG64 window);

#endif
