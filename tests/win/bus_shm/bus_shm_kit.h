/*
 * bus_shm_kit.h - helpers of the broker shared-memory suites that run the broker hard
 * (test_bus_shm_fanout.c, test_bus_shm_kill.c, test_bus_shm_cycles.c):
 *
 *   broker    (its process and config: bs_broker of bus_shm_common.h) whether it still runs;
 *   stats     the broker's counters, all from one stats answer (aipc_bus_stats);
 *   outside   the broker's next handle value and mapped bytes, measured from this process:
 *             an event duplicated into it and closed there again (the value it got is the
 *             broker's next free handle value), and a VirtualQueryEx walk of its committed
 *             MEM_MAPPED bytes (every section view the broker holds). Both work under Wine 8,
 *             where GetProcessHandleCount answers 0; the broker needs no probe of its own;
 *   checker   a bus client that checks every payload (aipc_pattern_fill seeded with the
 *             publication's sequence number: order and every byte), counts drops, and wakes
 *             one shared event so a publisher can keep a window ahead of its readers.
 * Callbacks run on the SDK's I/O thread of the client's engine (or on the thread running its
 * dispatcher) and only count; the test thread asserts.
 */
#ifndef BUS_SHM_KIT_H
#define BUS_SHM_KIT_H

#include "bus_shm_common.h"

/* "" while b's process runs, else " (the broker process has exited: code N)" for a
 * failure message (one static buffer: test thread only). */
const char *bsk_broker_gone(const bs_broker *b);

/* The broker's counters from one stats answer (-1: the answer has no such member). */
typedef struct bsk_stats {
    long long clients, drops, msgs_out;
    long long shm_release_frames;    /* shm_done frames the broker read */
    long long shm_clients, shm_bytes, shm_segments, shm_client_segments, shm_publications,
        shm_deliveries, shm_inline_fallbacks, shm_in, shm_bad_releases;
    long long shm_page_releases;     /* slots released through clients' release pages */
    long long shm_pages;             /* clients with a mapped release page now */
} bsk_stats;
/* One stats round trip through `bus`. 0, or -1 (no answer within the test's wait). */
int bsk_stats_get(aipc_bus *bus, bsk_stats *out);

/* Asks again until want(out, ref) holds (1) or the test's wait runs out (0); *out = the last
 * answer. */
int bsk_stats_until(aipc_bus *via, int (*want)(const bsk_stats *, const bsk_stats *),
                    const bsk_stats *ref, bsk_stats *out);

/* The broker process seen from outside. */
typedef struct bsk_outside {
    long long next_handle;   /* the handle value an object duplicated into it gets */
    long long mapped_bytes;  /* committed MEM_MAPPED bytes in its address space */
} bsk_outside;
/* 0, or -1 (the duplication or the walk failed). */
int bsk_outside_take(HANDLE process, bsk_outside *out);
/* How many handle slots are in use in the process below the highest of BSK_PROBES probe handles
 * duplicated into it (and closed again): its live handles, wherever the free slots lie (a
 * handle table hands out the lowest free slot, so next_handle moves with a hole that a handle
 * closed and made again elsewhere leaves, while this count does not); -1 on failure. */
#define BSK_PROBES 64
long long bsk_outside_handles(HANDLE process);

/* ---- checking subscriber ------------------------------------------------------------------ */
typedef struct bsk_sub {
    aipc_bus *bus;
    volatile LONG64 got;        /* publications received */
    volatile LONG64 bad;        /* out of order or not byte-exact */
    volatile LONG64 dropped;    /* sum of on_dropped counts */
    volatile LONG64 states;     /* on_state calls (CONNECTED counted in connected) */
    volatile LONG64 connected;
    volatile LONG last_state, last_error;   /* of the latest on_state */
    volatile LONG64 next_seq;   /* the sequence number expected next (drops skip ahead) */
    int allow_gaps;             /* a slow reader: a later seq is fine (dropped ones) */
    HANDLE stall;               /* non-NULL: the first payload >= BS_THR blocks on it (then
                                 * cleared: later callbacks run at once) */
    volatile LONG stalled;      /* 1 while a callback blocks on `stall` */
    HANDLE slow;                /* non-NULL: a payload < BS_THR waits up to slow_ms for it (a
                                 * slow callback that the test can end early) */
    DWORD slow_ms;
    char error[160];            /* first problem seen on the I/O thread */
} bsk_sub;

/* Signalled (auto-reset) on every delivery, drop and state change of any bsk_sub. */
extern HANDLE bsk_progress;
void bsk_init(void);           /* creates bsk_progress once */

/* Options for a checking subscriber on `engine` (broker pipe `pipe`); adjust, then bsk_sub_open. */
void bsk_sub_options(bsk_sub *s, aipc_bus_options *o, const wchar_t *pipe, PipeImplType engine);
/* Connects with `o`, waits for CONNECTED, subscribes to `topic` (NULL: a publisher, no
 * subscription) and syncs (ping); runs o->dispatcher's callbacks while it waits. 0 or -1. */
int bsk_sub_open(bsk_sub *s, const aipc_bus_options *o, const char *topic);
/* A ping round trip through bus (running dispatcher d meanwhile, may be NULL): everything
 * the broker queued for it before has been delivered. 0 or -1. */
int bsk_sync(aipc_bus *bus, aipc_dispatcher *d);
/* Zeroes s and opens it with the defaults: a checking subscriber of `topic`, or a publisher
 * (topic NULL), on `engine`. 0 or -1. */
int bsk_open(bsk_sub *s, const bs_broker *b, PipeImplType engine, const char *topic);
/* Closes the client and leaves s reusable. */
void bsk_sub_close(bsk_sub *s);

/* Waits until *field >= target (bounded by the test's wait); 1 if reached. */
int bsk_wait64(volatile LONG64 *field, long long target);
/* The same, running dispatcher d's callbacks meanwhile (d may be NULL); with `done` non-NULL
 * it waits for that event instead of the field. */
int bsk_wait_pump(aipc_dispatcher *d, HANDLE done, volatile LONG64 *field, long long target);

/* Publishes 1 publication of `size` bytes with sequence number `seq` (the pattern's seed),
 * retrying on AIPC_EQUEUEFULL until the test's wait runs out. 0 or the AIPC_E* error. */
int bsk_publish(aipc_bus *pub, const char *topic, uint8_t *buf, size_t size, uint32_t seq);

/* Runs fn(arg) on a thread of its own and waits for it (bounded by the test's wait; fails the
 * test otherwise): a release from another thread than the SDK's, as a UI thread's. */
void bsk_on_thread(LPTHREAD_START_ROUTINE fn, void *arg);

/* The bus client's own shared-memory counters (aipc_bus_get_counters). */
aipc_bus_counters bsk_counters(aipc_bus *bus);

#endif
